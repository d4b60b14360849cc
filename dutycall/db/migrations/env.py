"""Alembic environment: runs migrations over the async engine in a private event loop."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from dutycall.db import Base
from dutycall.directory import models  # noqa: F401  (registers the tables)
from dutycall.greetings import models as greeting_models  # noqa: F401
from dutycall.incidents import models as incident_models  # noqa: F401
from dutycall.media import models as media_models  # noqa: F401
from dutycall.rollcall import models as rollcall_models  # noqa: F401
from dutycall.supervision import models as supervision_models  # noqa: F401

config = context.config
target_metadata = Base.metadata


def do_run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None, "alembic needs sqlalchemy.url"
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_async_migrations())
