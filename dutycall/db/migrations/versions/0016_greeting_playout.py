"""A greeting plays a pre-recorded media item

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('greetings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('late_join', sa.String(length=8), server_default='live', nullable=False))
        batch_op.create_foreign_key('fk_greetings_media_id_greeting_media', 'greeting_media', ['media_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('greetings', schema=None) as batch_op:
        batch_op.drop_constraint('fk_greetings_media_id_greeting_media', type_='foreignkey')
        batch_op.drop_column('late_join')
        batch_op.drop_column('media_id')
