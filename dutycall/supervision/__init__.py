"""Supervision notices (督办通知) for roll-calls and incidents: issue, respond, close."""
