"""The long reliability drills behind the README's figures (``make soak``); ``make test`` runs reduced ones."""
