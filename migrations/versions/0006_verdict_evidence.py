"""verdict evidence, threshold and run-to-run dispersion; the baseline's dispersion

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # Nullable: verdicts stored before the CUSUM rule have no evidence; the first evaluation
    # after the upgrade starts each metric's statistic at 0, as a new baseline would.
    with op.batch_alter_table("verdict", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("dispersion", sa.Float(), nullable=True))
    # NULL: computed at the baseline's next evaluation.
    with op.batch_alter_table("baseline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispersion", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("baseline", schema=None) as batch_op:
        batch_op.drop_column("dispersion")
    with op.batch_alter_table("verdict", schema=None) as batch_op:
        batch_op.drop_column("dispersion")
        batch_op.drop_column("threshold")
        batch_op.drop_column("evidence")
