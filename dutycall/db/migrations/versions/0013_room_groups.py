"""Saved room groups for the roll-call room picker

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('room_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_account_id', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('room_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('room_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_room_groups_owner_account_id'), ['owner_account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_room_groups_unit_id'), ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('room_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_room_groups_unit_id'))
        batch_op.drop_index(batch_op.f('ix_room_groups_owner_account_id'))

    op.drop_table('room_groups')
