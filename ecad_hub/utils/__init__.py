"""Small helpers below everything else: atomic JSON/file I/O (:mod:`.io`), library logging (:mod:`.logging`), plain-text tables (:mod:`.table`)."""
