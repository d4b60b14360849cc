"""Pre-recorded greeting media

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 15:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('greeting_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure', sa.String(length=300), nullable=True),
    sa.Column('original_name', sa.String(length=200), nullable=True),
    sa.Column('original_bytes', sa.BigInteger(), nullable=False),
    sa.Column('path', sa.String(length=64), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('video_codec', sa.String(length=16), nullable=True),
    sa.Column('audio_codec', sa.String(length=16), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('transcoded', sa.Boolean(), nullable=False),
    sa.Column('transcode_reason', sa.String(length=64), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['accounts.id'], ),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('greeting_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_greeting_media_unit_path'), ['unit_path'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('greeting_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_greeting_media_unit_path'))

    op.drop_table('greeting_media')
