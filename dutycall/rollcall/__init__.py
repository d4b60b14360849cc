"""Roll-call plans, schedule, state machine, coordinator, attendance (not built yet).

Uses `dutycall.conference`; never the other way round.
"""
