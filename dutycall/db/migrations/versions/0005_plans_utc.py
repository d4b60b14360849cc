"""roll-call plans: last_fired_at in UTC, sub-hourly plans paused

Before this revision the scheduler stored an occurrence with its plan's own offset; SQLite
keeps no offset, so a +08:00 plan's mark read back 8 hours late (nothing fired) and a -05:00
plan's 5 hours early (fired again every tick). Which rows were written that way cannot be
told apart, so every plan restarts from now: nothing past fires again, the next occurrence
fires on time. Plans recurring more often than hourly (no longer accepted) are paused for
their host to edit.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 17:45:00
"""
import datetime as dt

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    plans = sa.table('roll_call_plans', sa.column('last_fired_at', sa.DateTime(timezone=True)),
                     sa.column('rrule', sa.String(256)), sa.column('active', sa.Boolean()))
    op.execute(plans.update().values(last_fired_at=dt.datetime.now(dt.timezone.utc)))
    op.execute(plans.update().where(sa.or_(plans.c.rrule.ilike('%FREQ=MINUTELY%'),
                                           plans.c.rrule.ilike('%FREQ=SECONDLY%')))
               .values(active=False))


def downgrade() -> None:
    pass  # data only: the old marks cannot be restored, and the UTC ones are valid before this revision too
