"""live relays of footage to consoles, footage access audit

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('footage_relays',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('started_by', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.Integer(), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['ended_by'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['source_id'], ['footage_sources.id'], ),
    sa.ForeignKeyConstraint(['started_by'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('footage_relays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_footage_relays_ended_at'), ['ended_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_footage_relays_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_footage_relays_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_footage_relays_unit_path'), ['unit_path'], unique=False)

    op.create_table('footage_relay_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('relay_id', sa.Integer(), nullable=False),
    sa.Column('duty_room_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['duty_room_id'], ['duty_rooms.id'], ),
    sa.ForeignKeyConstraint(['relay_id'], ['footage_relays.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('footage_relay_targets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_footage_relay_targets_relay_id'), ['relay_id'], unique=False)

    op.create_table('footage_access',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=True),
    sa.Column('segment_id', sa.Integer(), nullable=True),
    sa.Column('relay_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('principal_kind', sa.String(length=8), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('duty_room_id', sa.Integer(), nullable=True),
    sa.Column('who', sa.String(length=128), nullable=False),
    sa.Column('range_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('range_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['duty_room_id'], ['duty_rooms.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['relay_id'], ['footage_relays.id'], ),
    sa.ForeignKeyConstraint(['segment_id'], ['footage_segments.id'], ),
    sa.ForeignKeyConstraint(['source_id'], ['footage_sources.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('footage_access', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_footage_access_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_footage_access_incident_id'), ['incident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('footage_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_footage_access_incident_id'))
        batch_op.drop_index(batch_op.f('ix_footage_access_at'))

    op.drop_table('footage_access')
    with op.batch_alter_table('footage_relay_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_footage_relay_targets_relay_id'))

    op.drop_table('footage_relay_targets')
    with op.batch_alter_table('footage_relays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_footage_relays_unit_path'))
        batch_op.drop_index(batch_op.f('ix_footage_relays_source_id'))
        batch_op.drop_index(batch_op.f('ix_footage_relays_incident_id'))
        batch_op.drop_index(batch_op.f('ix_footage_relays_ended_at'))

    op.drop_table('footage_relays')
