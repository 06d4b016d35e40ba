#!/usr/bin/env python3
"""A fake iTop REST/JSON endpoint for purged's tests, written from the
team's notes on iTop (backends.md) and on a real iTop 3.2 (itop-observed.md).

It is a test peer, not a stub: tests/peers/test_fake_itop.py checks its
behaviour. What it reproduces:
  - POST to .../webservices/rest.php, form fields version, auth_user,
    auth_pwd, json_data (urlencoded); version may come in the query string;
    credentials in a GET query are refused; HTTP 200 for everything.
  - codes: 1 login/profile/rights, 2 no version, 3 no json_data, 4 bad JSON,
    10 unsupported version, 11 unknown verb, 12 unsafe delete (2+ objects),
    13 page < 1, 100 everything else (missing operation/comment/class, bad
    class or OQL, a blocked single-object delete, a real delete hitting a
    blocker: "Error: Found issue(s)", no objects, earlier deletes kept).
  - core/get (keys: id, OQL "SELECT C [WHERE id [NOT] IN (..)]", attribute
    object; limit/page; "Found: N" counts the whole set; objects null if none),
    core/create, core/delete (comment mandatory; simulate read with PHP
    truthiness; "SIMULATING: " prefix; per-object codes 0, 4 blocker, 5 reset;
    cascades reported with code 0), list_operations, core/check_credentials.
  - dependencies: a mandatory "manual" external key blocks; a nullable one is
    reset; a mandatory "auto" one deletes in cascade.
  - a request log (method, path, connection) for the efficiency benchmark.

Usage: fake_itop.py PORT [--user U --password P] [--seed]  (serves until killed)
"""
import http.server
import json
import re
import socketserver
import sys
import threading
import urllib.parse

VERSIONS = {"1.0", "1.1", "1.2", "1.3", "1.4"}
VERBS = ["core/create", "core/update", "core/apply_stimulus", "core/get", "core/delete", "core/get_related",
         "core/check_credentials"]

# class -> {attribute: (target class, "manual"|"auto"|"null")} for external keys.
MODEL = {
    "Organization": {"parent_id": ("Organization", "null")},
    "Location": {"org_id": ("Organization", "manual")},
    "Person": {"org_id": ("Organization", "manual"), "location_id": ("Location", "null")},
    "Team": {"org_id": ("Organization", "manual")},
    "ServiceFamily": {},
    "Service": {"org_id": ("Organization", "manual"), "servicefamily_id": ("ServiceFamily", "null")},
    "ServiceSubcategory": {"service_id": ("Service", "manual")},
    "SLA": {"org_id": ("Organization", "manual")},
    "SLT": {},
    "CustomerContract": {"org_id": ("Organization", "manual"), "provider_id": ("Organization", "manual")},
    "UserRequest": {"org_id": ("Organization", "auto"), "caller_id": ("Person", "null"),
                    "service_id": ("Service", "null"), "servicesubcategory_id": ("ServiceSubcategory", "null")},
    "Incident": {"org_id": ("Organization", "auto"), "caller_id": ("Person", "null"),
                 "service_id": ("Service", "null")},
    "User": {"contactid": ("Person", "null")},
}
ABSTRACT = {"Contact": ["Person", "Team"], "Ticket": ["UserRequest", "Incident"], "Contract": ["CustomerContract"]}
# Ids are unique per root class (one table per hierarchy): Person 1 and Team 1 cannot both exist.
ROOT = {leaf: root for root, leaves in ABSTRACT.items() for leaf in leaves}


class ITopError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.objects = {}  # (class, id) -> fields
        self.next_id = {}
        self.users = {}    # login -> {"password", "rest": bool, "no_delete": set(classes)}

    def create(self, cls, fields):
        if cls not in MODEL:
            raise ITopError(100, f"Error: Unknown class '{cls}'")
        root = ROOT.get(cls, cls)
        oid = self.next_id.get(root, 1)
        self.next_id[root] = oid + 1
        f = {k: v for k, v in fields.items()}
        f["id"] = str(oid)
        f.setdefault("name", f.get("login", f"{cls} {oid}"))
        for attr, (target, _) in MODEL[cls].items():
            f[attr] = str(f.get(attr, 0))
        self.objects[(cls, str(oid))] = f
        return str(oid)

    def friendly(self, cls, oid):
        f = self.objects[(cls, oid)]
        return f.get("name", f"{cls}::{oid}")

    def select(self, cls, key):
        """Objects matching @key for @cls, as a list of (class, id)."""
        classes = ABSTRACT.get(cls, [cls])
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            return [(c, str(key)) for c in classes if (c, str(key)) in self.objects]
        if isinstance(key, dict):
            return [(c, i) for (c, i), f in sorted(self.objects.items(), key=lambda x: (x[0][0], int(x[0][1])))
                    if c in classes and all(str(f.get(k)) == str(v) for k, v in key.items())]
        if isinstance(key, str):
            m = re.fullmatch(r"\s*SELECT\s+(\w+)(?:\s+WHERE\s+id\s+(NOT\s+)?IN\s*\(([\d\s,]*)\))?\s*", key, re.I)
            if not m:
                raise ITopError(100, f"Error: Wrong format for key: OQL '{key}' cannot be parsed")
            oql_cls, neg, ids = m.group(1), m.group(2), m.group(3)
            if oql_cls not in MODEL and oql_cls not in ABSTRACT:
                raise ITopError(100, f"Error: Unknown class '{oql_cls}' in OQL")
            wanted = {i.strip() for i in (ids or "").split(",") if i.strip()}
            classes = ABSTRACT.get(oql_cls, [oql_cls])
            out = []
            for (c, i) in sorted(self.objects, key=lambda x: (x[0], int(x[1]))):
                if c not in classes:
                    continue
                if m.group(3) is not None and ((i in wanted) == bool(neg)):
                    continue
                out.append((c, i))
            return out
        raise ITopError(100, "Error: Wrong format for key")

    def referrers(self, cls, oid):
        for (c, i), f in self.objects.items():
            for attr, (target, rule) in MODEL[c].items():
                if target == cls and f.get(attr) == oid:
                    yield c, i, attr, rule

    def plan(self, targets):
        """Deletion plan: (deleted in order, resets, blockers) for @targets."""
        deleted, resets, blockers = [], [], []
        seen = set()

        def visit(c, i, requested):
            if (c, i) in seen:
                return
            seen.add((c, i))
            for rc, ri, attr, rule in self.referrers(c, i):
                if (rc, ri) in seen or (rc, ri) in targets_set:
                    continue
                if rule == "null":
                    resets.append((rc, ri, attr))
                elif rule == "auto":
                    visit(rc, ri, False)
                else:
                    blockers.append((rc, ri, c, i))
            deleted.append((c, i, requested))

        targets_set = set(targets)
        for c, i in targets:
            visit(c, i, True)
        return deleted, resets, blockers


def truthy(v):
    """PHP truthiness, as iTop reads `simulate`."""
    if v is None or v is False:
        return False
    if isinstance(v, str):
        return v not in ("", "0")
    if isinstance(v, (int, float)):
        return v != 0
    return bool(v)


def obj_out(store, cls, oid, fields_spec, code=0, message=""):
    f = store.objects.get((cls, oid), {"id": oid})
    if fields_spec in ("*", "*+"):
        fields = dict(f)
    else:
        names = [x.strip() for x in (fields_spec or "id,friendlyname").split(",") if x.strip()]
        fields = {}
        for n in names:
            fields[n] = store.friendly(cls, oid) if n == "friendlyname" and (cls, oid) in store.objects else f.get(n, "")
            if cls == "User" and n == "org_id":  # an external field: contactid->org_id, as iTop's User has
                fields[n] = str(store.objects.get(("Person", str(f.get("contactid"))), {}).get("org_id", "0"))
    return {"code": code, "message": message, "class": cls, "key": oid, "fields": fields}


def handle(store, login, op, version):
    name = op.get("operation")
    if name is None:
        raise ITopError(100, "Error: missing parameter 'operation'")
    if name == "list_operations":
        return {"code": 0, "message": f"Operations: {len(VERBS)}", "version": version,
                "operations": [{"verb": v, "description": v, "extension": "CoreServices"} for v in VERBS]}
    if name not in VERBS:
        raise ITopError(11, f"Error: Unknown verb '{name}' in version '{version}'")
    if name == "core/check_credentials":
        u = store.users.get(op.get("user"))
        return {"code": 0, "message": "", "authorized": bool(u and u["password"] == op.get("password"))}
    cls = op.get("class")
    if name == "core/create":
        if "comment" not in op:
            raise ITopError(100, "Error: missing parameter 'comment'")
        if cls is None or "fields" not in op:
            raise ITopError(100, "Error: missing parameter 'class' or 'fields'")
        oid = store.create(cls, op["fields"])
        return {"code": 0, "message": "", "objects": {f"{cls}::{oid}": obj_out(store, cls, oid, op.get("output_fields"),
                                                                                0, "created")}}
    if cls is None:
        raise ITopError(100, "Error: missing parameter 'class'")
    if cls not in MODEL and cls not in ABSTRACT:
        raise ITopError(100, f"Error: class: '{cls}' is not a valid class'")  # sic, as iTop 3.2 writes it
    if "key" not in op:
        raise ITopError(100, "Error: missing parameter 'key'")
    matched = store.select(cls, op["key"])
    if name == "core/get":
        limit = int(op.get("limit", 0) or 0)
        page = int(op.get("page", 1))
        if page < 1:
            raise ITopError(13, "Error: page must be >= 1")
        shown = matched[limit * (page - 1):limit * page] if limit else matched
        objs = {f"{c}::{i}": obj_out(store, c, i, op.get("output_fields")) for c, i in shown}
        return {"code": 0, "message": f"Found: {len(matched)}", "objects": objs or None}
    if name == "core/delete":
        if "comment" not in op:
            raise ITopError(100, "Error: missing parameter 'comment'")
        no_delete = store.users.get(login, {}).get("no_delete", set())
        if cls in no_delete or any(leaf in no_delete for leaf in ABSTRACT.get(cls, [])):
            raise ITopError(1, f"Error: the user is not allowed to delete objects of class {cls}")
        simulate = truthy(op.get("simulate", False))
        deleted, resets, blockers = store.plan(matched)
        objs = {}
        for c, i, attr in resets:
            objs[f"{c}::{i}"] = obj_out(store, c, i, "id,friendlyname", 5, f"Reset external keys: {attr}")
        if blockers:
            for rc, ri, c, i in blockers:
                objs[f"{rc}::{ri}"] = obj_out(store, rc, ri, "id,friendlyname", 4, "must be deleted explicitly")
            issue = "; ".join(f"{rc}::{ri} references {c}::{i}" for rc, ri, c, i in blockers)
            if simulate:
                code = 12 if len(matched) >= 2 else 100
                return {"code": code, "message": ("SIMULATING: " if simulate else "") + f"Found issue(s): {issue}",
                        "objects": objs}
            if len(matched) < 2:
                raise ITopError(100, f"Error: Found issue(s): {issue}")
            # Not atomic: objects go one by one until the first one that is blocked.
            blocked_targets = {(c, i) for _, _, c, i in blockers}
            for c, i in matched:
                if (c, i) in blocked_targets:
                    break
                d, r, b = store.plan([(c, i)])
                if b:
                    break
                for rc, ri, attr in r:
                    store.objects[(rc, ri)][attr] = "0"
                for dc, di, _ in d:
                    store.objects.pop((dc, di), None)
            raise ITopError(100, f"Error: Found issue(s): {issue}")
        requested = sum(1 for d in deleted if d[2])
        cascaded = len(deleted) - requested
        for c, i, _ in deleted:
            objs[f"{c}::{i}"] = obj_out(store, c, i, "id,friendlyname", 0, "")
        if not simulate:
            for rc, ri, attr in resets:
                if (rc, ri) in store.objects:
                    store.objects[(rc, ri)][attr] = "0"
            for c, i, _ in deleted:
                store.objects.pop((c, i), None)
        msg = f"Deleted: {requested}" + (f" plus (for DB integrity) {cascaded}" if cascaded else "")
        return {"code": 0, "message": ("SIMULATING: " if simulate else "") + msg, "objects": objs or None}
    raise ITopError(100, f"Error: verb '{name}' is not supported by this fake")


def seed(store, n_requests=30):
    """Service-management data like a small installation's."""
    admin_org = store.create("Organization", {"name": "My Company/Department"})
    admin_person = store.create("Person", {"name": "Admin", "first_name": "My", "org_id": admin_org})
    store.create("User", {"login": "rest", "contactid": admin_person})
    orgs = [store.create("Organization", {"name": f"Customer {k}"}) for k in range(3)]
    fam = store.create("ServiceFamily", {"name": "IT"})
    for k, org in enumerate(orgs):
        loc = store.create("Location", {"name": f"Site {k}", "org_id": org})
        p = store.create("Person", {"name": f"Person {k}", "org_id": org, "location_id": loc})
        store.create("Team", {"name": f"Team {k}", "org_id": org})
        svc = store.create("Service", {"name": f"Service {k}", "org_id": org, "servicefamily_id": fam})
        sub = store.create("ServiceSubcategory", {"name": f"Sub {k}", "service_id": svc})
        store.create("SLA", {"name": f"SLA {k}", "org_id": org})
        store.create("SLT", {"name": f"SLT {k}"})
        store.create("CustomerContract", {"name": f"Contract {k}", "org_id": org, "provider_id": admin_org})
        for r in range(n_requests // 3):
            store.create("UserRequest", {"name": f"R-{k}-{r}", "title": "help", "org_id": org, "caller_id": p,
                                         "service_id": svc, "servicesubcategory_id": sub})
        store.create("Incident", {"name": f"I-{k}", "title": "down", "org_id": org, "caller_id": p})


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    store = None
    log = []

    def log_message(self, *args):
        pass

    def reply(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)  # always 200: the JSON code tells
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.log.append(("GET", self.path, self.client_address[1]))
        if "/stats" in self.path:
            conns = len({c for _, _, c in self.log})
            reqs = [r for r in self.log if "/stats" not in r[1]]
            return self.reply({"requests": len(reqs), "connections": len({c for _, _, c in reqs}), "all": conns})
        # Credentials in a GET query are not read by the form login.
        self.reply({"code": 1, "message": "Error: Invalid login"})

    def do_POST(self):
        self.log.append(("POST", self.path, self.client_address[1]))
        n = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(n).decode()
        if "rest.php" not in self.path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        query = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).items()}
        version = form.get("version", query.get("version"))
        try:
            with self.store.lock:
                user = self.store.users.get(form.get("auth_user"))
                # Codes 5/6 exist in the source but a real iTop answers 1.
                if not user or user["password"] != form.get("auth_pwd"):
                    raise ITopError(1, "Error: Invalid login")
                if not user["rest"]:
                    raise ITopError(1, "Error: This user is not authorized to use the web services. "
                                       "(The profile REST Services User is required)")
                if version is None:
                    raise ITopError(2, "Error: Missing parameter 'version'")
                if "json_data" not in form:
                    raise ITopError(3, "Error: Missing parameter 'json_data'")
                try:
                    op = json.loads(form["json_data"])
                except ValueError:
                    raise ITopError(4, "Error: Parameter json_data is not a valid JSON structure")
                if version not in VERSIONS:
                    raise ITopError(10, f"Error: No operation is available for version: {version}")
                if not isinstance(op, dict):
                    raise ITopError(4, "Error: Parameter json_data is not a valid JSON structure")
                doc = handle(self.store, form.get("auth_user"), op, version)
        except ITopError as e:
            doc = {"code": e.code, "message": e.message}
        self.reply(doc)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(port, user="rest", password="rest-pw", do_seed=False):
    store = Store()
    store.users[user] = {"password": password, "rest": True, "no_delete": set()}
    store.users["admin-norest"] = {"password": password, "rest": False, "no_delete": set()}
    store.users["readonly"] = {"password": password, "rest": True, "no_delete": set(MODEL)}
    if do_seed:
        seed(store)
    handler = type("H", (Handler,), {"store": store, "log": []})
    return Server(("127.0.0.1", port), handler), store


if __name__ == "__main__":
    args = sys.argv[1:]
    port = int(args[0])
    user = args[args.index("--user") + 1] if "--user" in args else "rest"
    pw = args[args.index("--password") + 1] if "--password" in args else "rest-pw"
    srv, _ = make_server(port, user, pw, "--seed" in args)
    print(f"fake iTop on http://127.0.0.1:{srv.server_address[1]}/webservices/rest.php", flush=True)
    srv.serve_forever()
