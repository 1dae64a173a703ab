"""`caseflow db …` and `caseflow org …`: setting a database up and putting an org chart in force."""

from __future__ import annotations

import click

from caseflow.cli.app import App, cli, note_option, pass_app


@cli.group()
def db() -> None:
    """Create or upgrade the database schema (on PostgreSQL: as the owner role).

    \b
    Example:
      caseflow --db sqlite:///office.db db init
    """


def _init(app: App, grant: tuple[str, ...]) -> None:
    from caseflow.cli.opening import open_store
    from caseflow.runtime.engine import Engine
    store = open_store(app.db, app.lock_timeout)
    store.migrate(simulation=app.simulation)
    engine = Engine(store, app.catalog)          # the first use stores the org chart given in --workflows
    granted: list[str] = []
    if grant:
        with store.write() as conn:
            for role in grant:
                store.backend.grant_runtime(conn, role)
                granted.append(role)
    payload = {"db": store.shown_url, "simulation": engine.simulation, "org_version": engine.org_id,
               "org": engine.org_sha, "granted": granted}
    kind = "simulation" if engine.simulation else "live"
    app.out(payload, f"{kind} database ready: {store.shown_url}; org chart version {engine.org_id} "
                     f"({engine.org_sha[:12]})" + (f"; runtime role(s) granted: {', '.join(granted)}" if granted
                                                  else ""))


grant_option = click.option("--grant", multiple=True, metavar="ROLE",
                            help="PostgreSQL: give this runtime role what the engine needs, and no more.")


@db.command("init")
@grant_option
@pass_app
def db_init(app: App, grant: tuple[str, ...]) -> None:
    """Create the schema, record live or simulation, store the org chart from --workflows.

    Run it as the database owner; operators then work under a runtime role that
    owns nothing (see docs/security.md).

    \b
    Example:
      caseflow --db sqlite:///office.db db init
      caseflow --simulation --db sqlite:///training.db db init
    """
    _init(app, grant)


@db.command("upgrade")
@grant_option
@pass_app
def db_upgrade(app: App, grant: tuple[str, ...]) -> None:
    """Migrate the schema to this version of caseflow (as the owner role) and renew the grants.

    \b
    Example:
      caseflow db upgrade
    """
    _init(app, grant)


@cli.group()
def org() -> None:
    """The org chart (people, roles) and calendars in force in this database.

    \b
    Example:
      caseflow --as zhang.wei org show
    """


@org.command("show")
@pass_app
def org_show(app: App) -> None:
    """List the org chart versions: the last one is in force.

    \b
    Example:
      caseflow --as zhang.wei org show
    """
    from caseflow.store import settings as db_settings
    engine = app.engine
    with engine.store.read() as conn:
        versions = db_settings.org_versions(conn)
    rows = [{"version": v.id, "sha256": v.sha256, "applied_at": v.applied_at, "applied_by": v.applied_by,
             "os_user": v.os_user, "note": v.note, "in_force": v.id == engine.org_id} for v in versions]
    human = "\n".join(f"{'*' if r['in_force'] else ' '} {r['version']:>3}  {r['sha256'][:12]}  {r['applied_at']}  "
                      f"{r['applied_by']} ({r['os_user']})  {r['note'] or ''}" for r in rows)
    app.out(rows, human)


@org.command("apply")
@note_option
@pass_app
def org_apply(app: App, note: str | None) -> None:
    """Put the org.yaml and calendars.yaml of --workflows in force (needs can_apply_org; recorded).

    \b
    Example:
      caseflow init workflows
      caseflow --as zhang.wei --workflows ./workflows org apply --note "2026年人员调整"
    """
    from caseflow.catalog import Catalog
    from caseflow.runtime.identity import apply_org
    engine = app.engine
    result = apply_org(engine, Catalog.load(app.workflows_dir), app.user, note)
    human = (f"org chart version {result['version']} in force ({result['sha256'][:12]})" if result["changed"]
             else f"unchanged: this org chart is already in force (version {result['version']})")
    app.out(result, human)
