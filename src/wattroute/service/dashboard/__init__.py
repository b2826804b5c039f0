"""The live dashboard served at ``/``: its data (:mod:`.view`) and its page (``static/``)."""
