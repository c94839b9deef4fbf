"""The ``authsession`` command line."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from collections.abc import Sequence

from .jwt import decode
from .jwt import v4 as jwt_v4
from .jwt._errors import JWTDecodeError


def _cmd_secret(args: argparse.Namespace) -> int:
    # 32 random bytes, base64: what `npx auth secret` generates for AUTH_SECRET.
    print(base64.b64encode(secrets.token_bytes(args.bytes)).decode())
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    secret = args.secret or os.environ.get("AUTH_SECRET") or os.environ.get("NEXTAUTH_SECRET")
    if not secret:
        print("error: pass --secret or set AUTH_SECRET", file=sys.stderr)
        return 2
    from_stdin = args.token == "-"  # noqa: S105 (the stdin marker, not a credential)
    text = sys.stdin.read().strip() if from_stdin else args.token
    try:
        claims = jwt_v4.decode(text, secret) if args.v4 else decode(text, secret, args.salt)
    except JWTDecodeError as exc:
        print(f"error: cannot decode token: {exc.reason}", file=sys.stderr)
        return 1
    print(json.dumps(claims, indent=2, ensure_ascii=False))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from ._config import secrets_from_env
    from ._explain import explain

    from_stdin = args.cookie == "-"
    header = sys.stdin.read().strip() if from_stdin else args.cookie
    if header.lower().startswith("cookie:"):
        header = header[len("cookie:") :].strip()
    secrets = tuple(args.secret) if args.secret else secrets_from_env()
    result = explain(
        header,
        secrets,
        authorization=args.authorization,
        cookie_name=args.cookie_name,
        secure_cookie=args.secure_cookie,
    )
    for line in result.lines:
        print(line)
    if result.claims is not None and args.claims:
        print(json.dumps(result.claims, indent=2, ensure_ascii=False))
    return 0 if result.ok else 1


def _cmd_db_init(args: argparse.Namespace) -> int:
    from .adapters._postgres import init_database, render_schema

    if args.print:
        print(render_schema(args.schema), end="")
        return 0
    dsn = args.dsn or os.environ.get("DATABASE_URL")
    if not dsn:
        print("error: pass --dsn or set DATABASE_URL", file=sys.stderr)
        return 2
    try:
        where = init_database(dsn, args.schema)
    except Exception as exc:  # shown to the operator; the DSN's password is never echoed
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Auth.js tables ready in {where}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import serve

    serve(args.host, args.port, args.db)  # Werkzeug's server handles Ctrl-C itself
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authsession", description="Auth.js / NextAuth sessions for Python."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dec = commands.add_parser("decode", help="decrypt a session token and print its claims")
    dec.add_argument("token", help="the token (a cookie value); '-' reads it from stdin")
    dec.add_argument("--secret", help="the Auth.js secret (default: $AUTH_SECRET)")
    fmt = dec.add_mutually_exclusive_group()
    fmt.add_argument(
        "--salt",
        default="authjs.session-token",
        help="Auth.js v5 salt: the cookie name (default: authjs.session-token)",
    )
    fmt.add_argument("--v4", action="store_true", help="a NextAuth v4 token")
    dec.set_defaults(func=_cmd_decode)

    exp = commands.add_parser(
        "explain",
        help="say why a Cookie header gives (or does not give) a session",
        description="Walk a Cookie header through cookie lookup, chunk joining and "
        "decryption, and say where and why it stops. Exit status 0 when a session resolves.",
    )
    exp.add_argument("cookie", help="the Cookie header value (from the browser); '-' reads stdin")
    exp.add_argument(
        "--secret",
        action="append",
        help="the Auth.js secret; repeat for rotation (default: $AUTH_SECRET, $NEXTAUTH_SECRET)",
    )
    exp.add_argument("--authorization", help="an Authorization header value to consider too")
    exp.add_argument("--cookie-name", help="a custom session cookie name")
    secure = exp.add_mutually_exclusive_group()
    secure.add_argument(
        "--secure", dest="secure_cookie", action="store_const", const=True, default=None
    )
    secure.add_argument("--insecure", dest="secure_cookie", action="store_const", const=False)
    exp.add_argument("--claims", action="store_true", help="also print the decoded claims")
    exp.set_defaults(func=_cmd_explain)

    demo = commands.add_parser(
        "demo", help="serve a demo site with database sessions on embedded SQLite"
    )
    demo.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    demo.add_argument(
        "--db", default="authsession-demo.sqlite3", help="SQLite file (default: %(default)s)"
    )
    demo.set_defaults(func=_cmd_demo)

    db = commands.add_parser("db", help="database set-up for the database strategy")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    init = db_commands.add_parser(
        "init",
        help="create the Auth.js tables (@auth/pg-adapter schema) in PostgreSQL",
        description="Create the users, accounts, sessions and verification_token tables "
        "of @auth/pg-adapter unless they exist (idempotent). Needs authsession[postgres].",
    )
    init.add_argument("--dsn", help="PostgreSQL DSN or URL (default: $DATABASE_URL)")
    init.add_argument("--schema", help="a PostgreSQL schema to create them in (default: public)")
    init.add_argument("--print", action="store_true", help="print the SQL instead of running it")
    init.set_defaults(func=_cmd_db_init)

    sec = commands.add_parser("secret", help="print a new random secret for AUTH_SECRET")
    sec.add_argument("--bytes", type=int, default=32, help="random bytes (default: 32)")
    sec.set_defaults(func=_cmd_secret)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
