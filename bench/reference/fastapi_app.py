"""The reference stack for side-by-side figures: FastAPI + uvicorn (PySyft 0.9's server stack) over SQLite.

Serves /readyz, GET /api/v1/settings (JSON read from SQLite), GET /api/v1/datasets (a page of stored JSON
documents) and POST /api/v1/auth/login checking a bcrypt hash at cost 12, which is what PySyft 0.9 does per
login. Run: python3 -m uvicorn fastapi_app:app.
Environment: REF_DB (SQLite path; created and seeded at start-up); REF_DATASETS (how many synthetic dataset
documents to seed); REF_MIRROR (a JSON file {"settings": {...}, "datasets": [...newest first]} captured from a
datasite server: the reference then stores and serves those very documents, as bench/api_wrk.py needs).
"""
import json
import os
import secrets
import sqlite3

import bcrypt
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

DB = os.environ.get("REF_DB", "/tmp/datasite-ref.db")
app = FastAPI()


def _connect():
    return sqlite3.connect(DB, check_same_thread=False)


@app.on_event("startup")
def _seed():
    con = _connect()
    con.execute("CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, hash BLOB)")
    con.execute("CREATE TABLE IF NOT EXISTS settings (id INTEGER PRIMARY KEY, json TEXT)")
    con.execute("CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, email TEXT)")
    con.execute("CREATE TABLE IF NOT EXISTS datasets (id INTEGER PRIMARY KEY, doc TEXT)")
    mirror = os.environ.get("REF_MIRROR")
    if mirror:
        with open(mirror) as f:
            m = json.load(f)
        # Stored oldest first, so that the listing's "ORDER BY id DESC" gives datasite's order.
        con.execute("DELETE FROM datasets")
        con.executemany("INSERT INTO datasets (doc) VALUES (?)",
                        [(json.dumps(d),) for d in reversed(m["datasets"])])
        con.execute("INSERT OR REPLACE INTO settings VALUES (1, ?)", (json.dumps(m["settings"]),))
    n = int(os.environ.get("REF_DATASETS", "0"))
    if con.execute("SELECT count(*) FROM datasets").fetchone()[0] < n:
        for i in range(n):
            doc = {"id": "%032x" % i, "name": "dataset-%05d" % i, "summary": "s", "description": "d" * 200,
                   "citation": "", "url": "", "contributors": [],
                   "assets": [{"name": "table", "format": "csv", "mock_is_real": False, "has_mock": True,
                               "schema": {"kind": "table", "rows": 100,
                                          "columns": [{"name": "age", "type": "int"}]}}]}
            con.execute("INSERT INTO datasets (doc) VALUES (?)", (json.dumps(doc),))
    if con.execute("SELECT count(*) FROM users").fetchone()[0] == 0:
        con.execute("INSERT INTO users VALUES (?, ?)",
                    ("info@example.org", bcrypt.hashpw(b"changethis", bcrypt.gensalt(12))))
        settings = {"id": "x", "name": "ref", "organization": "OpenMined",
                    "description": "This is the default description for a Datasite Server.",
                    "signup_enabled": False, "admin_email": "info@example.org",
                    "server_type": "datasite", "server_side_type": "high"}
        con.execute("INSERT OR IGNORE INTO settings VALUES (1, ?)", (json.dumps(settings),))
    con.commit()
    con.close()


@app.get("/readyz")
def readyz():
    return {"status": "ready"}


@app.get("/api/v1/settings")
def settings(request: Request):
    con = _connect()
    try:
        token = request.headers.get("authorization", "")[7:]
        if con.execute("SELECT 1 FROM sessions WHERE token = ?", (token,)).fetchone() is None:
            raise HTTPException(status_code=401)
        return json.loads(con.execute("SELECT json FROM settings").fetchone()[0])
    finally:
        con.close()


class Credentials(BaseModel):
    email: str
    password: str


# A plain `def`: FastAPI runs it on its thread pool, so the hash does not block the event loop.
@app.get("/api/v1/datasets")
def datasets(request: Request, page: int = 1, page_size: int = 50):
    con = _connect()
    try:
        token = request.headers.get("authorization", "")[7:]
        if con.execute("SELECT 1 FROM sessions WHERE token = ?", (token,)).fetchone() is None:
            raise HTTPException(status_code=401)
        total = con.execute("SELECT count(*) FROM datasets").fetchone()[0]
        rows = con.execute("SELECT doc FROM datasets ORDER BY id DESC LIMIT ? OFFSET ?",
                           (page_size, (page - 1) * page_size)).fetchall()
        return {"items": [json.loads(r[0]) for r in rows], "total": total, "page": page,
                "page_size": page_size}
    finally:
        con.close()


@app.post("/api/v1/auth/login")
def login(body: Credentials):
    con = _connect()
    try:
        row = con.execute("SELECT hash FROM users WHERE email = ?", (body.email,)).fetchone()
        if row is None or not bcrypt.checkpw(body.password.encode(), row[0]):
            raise HTTPException(status_code=401)
        token = secrets.token_urlsafe(32)
        con.execute("INSERT INTO sessions VALUES (?, ?)", (token, body.email))
        con.commit()
        return {"token": token}
    finally:
        con.close()
