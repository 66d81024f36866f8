"""OPD Queue Board: real-time queues for hospital outpatient departments."""
