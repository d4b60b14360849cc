"""Leadership greetings and their receipts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('greetings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('leader_account_id', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('target_unit_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['leader_account_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('greetings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_greetings_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_greetings_unit_path'), ['unit_path'], unique=False)

    op.create_table('greeting_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('greeting_id', sa.Integer(), nullable=False),
    sa.Column('duty_room_id', sa.Integer(), nullable=False),
    sa.Column('first_joined_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('watched_seconds', sa.Float(), nullable=False),
    sa.Column('joins', sa.Integer(), nullable=False),
    sa.Column('open_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_left_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['duty_room_id'], ['duty_rooms.id'], ),
    sa.ForeignKeyConstraint(['greeting_id'], ['greetings.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('greeting_id', 'duty_room_id', name='uq_greeting_receipt_room')
    )
    with op.batch_alter_table('greeting_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_greeting_receipts_greeting_id'), ['greeting_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('greeting_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_greeting_receipts_greeting_id'))

    op.drop_table('greeting_receipts')
    with op.batch_alter_table('greetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_greetings_unit_path'))
        batch_op.drop_index(batch_op.f('ix_greetings_status'))

    op.drop_table('greetings')
