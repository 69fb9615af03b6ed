"""Automation on the target: DuckyScript (:mod:`.ducky`) and waiting for what is on screen
(:mod:`.screen`)."""
