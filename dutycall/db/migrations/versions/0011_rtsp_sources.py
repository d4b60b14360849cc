"""RTSP pull sources

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rtsp_sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stopped_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['stopped_by'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('rtsp_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rtsp_sources_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_rtsp_sources_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_rtsp_sources_unit_path'), ['unit_path'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rtsp_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rtsp_sources_unit_path'))
        batch_op.drop_index(batch_op.f('ix_rtsp_sources_state'))
        batch_op.drop_index(batch_op.f('ix_rtsp_sources_incident_id'))

    op.drop_table('rtsp_sources')
