"""Incident records and information reporting (突发事件信息报送); see docs/architecture.md."""
