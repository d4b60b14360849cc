"""Room groups unique per owner and name

Two saves of a new group name at once each found no group of that name and inserted one; the
unique constraint makes the second fail (the API answers 409). Duplicates saved before are kept,
renamed: the lowest id keeps the name, each other gets the suffix " (<id>)".

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

NAME_MAX = 64


def upgrade() -> None:
    groups = sa.table('room_groups', sa.column('id', sa.Integer()), sa.column('owner_account_id', sa.Integer()),
                      sa.column('name', sa.String(NAME_MAX)))
    conn = op.get_bind()
    rows = conn.execute(sa.select(groups.c.id, groups.c.owner_account_id, groups.c.name).order_by(
        groups.c.owner_account_id, groups.c.name, groups.c.id)).all()
    taken = {(owner, name) for _, owner, name in rows}
    seen: set[tuple[int | None, str]] = set()
    for group_id, owner, name in rows:
        if owner is None or (owner, name) not in seen:
            seen.add((owner, name))
            continue
        suffix, n = f" ({group_id})", 0
        while True:
            renamed = name[:NAME_MAX - len(suffix)] + suffix
            if (owner, renamed) not in taken:
                break
            n += 1
            suffix = f" ({group_id}-{n})"
        taken.add((owner, renamed))
        conn.execute(groups.update().where(groups.c.id == group_id).values(name=renamed))
    with op.batch_alter_table('room_groups', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_room_groups_owner_name', ['owner_account_id', 'name'])


def downgrade() -> None:
    with op.batch_alter_table('room_groups', schema=None) as batch_op:
        batch_op.drop_constraint('uq_room_groups_owner_name', type_='unique')
