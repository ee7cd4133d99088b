from __future__ import annotations

import pytest

from recommender.errors import StoreError
from recommender.store import open_store
from recommender.store.postgres import MIGRATIONS
from tests.postgres_server import fresh_url, require_postgres
from tests.store_contract import StoreContract, make_run


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self):
        require_postgres()
        store = open_store(fresh_url(), keep_runs=3)
        yield store
        store.drop()

    @pytest.fixture
    def reopen(self, store):
        other = open_store(store.url, keep_runs=store.keep_runs)
        yield other
        other.close()

    @pytest.fixture
    def read_only(self, store):
        opened = []
        yield lambda: opened.append(open_store(store.url, read_only=True)) or opened[-1]
        for handle in opened:
            handle.close()


def test_urls_with_passwords_are_redacted_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    assert "cannot connect" in str(info.value)


def test_bad_schema_names_are_refused() -> None:
    with pytest.raises(StoreError, match="schema="):
        open_store("postgresql://127.0.0.1/db?schema=Robert'); DROP TABLE x;--")


def test_the_schema_is_migrated_once_and_versioned() -> None:
    require_postgres()
    url = fresh_url()
    first = open_store(url)
    try:
        first.publish(*make_run("run-01"))
        again = open_store(url)  # a second process opening the same store
        assert again.current_run_id() == "run-01"
        rows = again._fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert rows == [(step,) for step, _ in MIGRATIONS]
        again.close()
    finally:
        first.drop()


def test_a_version_1_store_is_migrated_in_place() -> None:
    require_postgres()
    import psycopg

    from recommender.store.postgres import split_url

    url = fresh_url()
    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f"SET search_path = {schema}")
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for statement in MIGRATIONS[0][1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations (version) VALUES (1)")
        conn.execute(
            "INSERT INTO runs (run_id, created_at, status, n_lists) "
            "VALUES ('run-00', '2021-01-01', 'published', 1)"
        )
        conn.execute(
            "INSERT INTO lists VALUES ('run-00', 's0', %s)",
            (make_run("run-00", 1)[0][0].to_json(),),
        )
        conn.execute("INSERT INTO meta VALUES ('current_run', 'run-00')")
    store = open_store(url, compact_fraction=5)  # 2 new lists on 1: still a delta
    try:
        assert store.get("s0").run_id == "run-00"
        assert store.current_run().base_run_id == "" and not store.current_run().is_delta
        lists, run = make_run("run-01", 3)
        store.publish_changes(lists[1:], run)
        assert store.current_run().base_run_id == "run-00" and store.current_run().n_lists == 3
        assert list(store.source_ids()) == ["s0", "s1", "s2"]
    finally:
        store.drop()


def test_a_newer_schema_is_refused() -> None:
    require_postgres()
    store = open_store(fresh_url())
    try:
        store._conn().execute("INSERT INTO schema_migrations (version) VALUES (99)")
        with pytest.raises(StoreError, match="schema version 99 was written by a newer"):
            open_store(store.url)
    finally:
        store.drop()


def test_the_batch_publishes_to_postgres_and_serving_reads_it(tiny_network) -> None:
    require_postgres()
    from recommender.batch import run_batch
    from recommender.serving import Recommendations

    config, _ = tiny_network
    url = fresh_url()
    config = config.model_copy(update={"store": config.store.model_copy(update={"url": url})})
    try:
        summary, model = run_batch(config)
        block = Recommendations(url).get("a-sake", k=3)
        assert block.run_id == summary.run_id and not block.fallback
        expected = model.recommend("a-sake", k=3)
        assert [i.article_id for i in block.items] == [i.article_id for i in expected.items]
        assert open_store(url).run(summary.run_id).summary["articles"] == 9
    finally:
        open_store(url).drop()


def test_a_role_that_may_only_select_serves_the_store() -> None:
    """Web nodes often connect as a role that may only read: the reader opens
    the store read-only (no schema creation, no migration, a read-only
    session), so such a role serves the lists."""
    require_postgres()
    import psycopg

    from recommender.serving import Recommendations
    from recommender.store.postgres import split_url

    url = fresh_url()
    writer = open_store(url)
    writer.publish(*make_run("run-01"))
    conninfo, schema = split_url(url)
    role = f"reader_{schema}"
    reader_url = url.replace("postgresql://postgres@", f"postgresql://{role}@", 1)
    assert reader_url != url, "RECOMMENDER_TEST_POSTGRES_URL names another user"
    admin = psycopg.connect(conninfo, autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        with pytest.raises(StoreError, match="permission denied"):
            open_store(reader_url)  # a writer's open creates and migrates
        reader = open_store(reader_url, read_only=True)
        assert reader.get("s1") == writer.get("s1") and reader.get("s\x001") is None
        with pytest.raises(StoreError, match="opened read-only"):
            reader.publish(*make_run("run-02"))
        reader.close()
        with Recommendations(reader_url) as recs:
            assert recs.get("s1").run_id == "run-01" and not recs.get("s1").fallback
            assert recs.get("a\x00b").fallback_source == "empty"
            assert recs.health().store_available and recs.get("s2").items
    finally:
        writer.drop()
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


def test_a_read_only_session_cannot_write_and_creates_nothing() -> None:
    require_postgres()
    import psycopg

    from recommender.store.postgres import split_url

    url = fresh_url()
    with pytest.raises(StoreError, match="no store in schema"):
        open_store(url, read_only=True)
    with pytest.raises(StoreError, match="no store in schema"):
        open_store(url, create=False)
    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo) as conn:
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        assert found.fetchone() is None  # neither open created the schema
    writer = open_store(url)
    try:
        writer.publish(*make_run("run-01"))
        reader = open_store(url, read_only=True)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader._conn().execute("DELETE FROM meta")
        reader.close()
        assert writer.current_run_id() == "run-01"
    finally:
        writer.drop()
