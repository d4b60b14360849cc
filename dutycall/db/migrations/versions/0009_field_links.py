"""field streaming links (one-time links for phones)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 11:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('field_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Integer(), nullable=True),
    sa.Column('claim_sha256', sa.String(length=64), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_published_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['revoked_by'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('secret_sha256')
    )
    with op.batch_alter_table('field_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_field_links_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_field_links_unit_path'), ['unit_path'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('field_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_field_links_unit_path'))
        batch_op.drop_index(batch_op.f('ix_field_links_incident_id'))

    op.drop_table('field_links')
