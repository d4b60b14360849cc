"""Video roll-calls: plans and their schedule, the state machine, the coordinator, attendance,
supervision notices, sheets and monthly statistics.

Uses `dutycall.conference` through its public names only; never the other way round.
"""
