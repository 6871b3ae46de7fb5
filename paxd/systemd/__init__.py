"""paxd under systemd: the readiness protocol (:mod:`.notify`) and the units (:mod:`.units`)."""
