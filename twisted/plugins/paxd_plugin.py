from twisted.application.service import ServiceMaker

paxd = ServiceMaker("paxd", "paxd.tap", "A pack registry daemon (Docker distribution API).", "paxd")
