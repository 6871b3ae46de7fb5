"""State shared by several paxd processes, in Redis (``redis:``): the index and the turns."""
