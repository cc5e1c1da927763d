"""Export batches: plan and review, launch through the ledger, watch to the end, and the history they leave.

The public names are on ``ims_nb`` itself; the modules here are named for the step they do.
"""
