#!/usr/bin/env python3
"""Seed a REAL iTop (../shared/peers/itop-up.sh) for purged's tests, and ask it things.

  itop_seed.py URL USER PWFILE seed TAG N_REQUESTS [SOCKET]
      Through REST core/create: Organizations "TAG A" and "TAG B", Persons, a Team with a
      member (lnkPersonToTeam), a Location, a Server (in that Location), a Hypervisor and a
      VirtualMachine on it (the VM must go first), a DocumentNote, a KnownError, a
      NormalChange, a Problem, a ServiceFamily, Service, ServiceSubcategory, SLA, a
      CustomerContract, and UserRequests: the first through REST (with a CI linked:
      lnkFunctionalCIToTicket), the other N-1 copied in SQL through MariaDB's SOCKET (a
      second instead of a minute of REST). Prints {"orgs": [a, b], ...} as JSON.
  itop_seed.py URL USER PWFILE count OQL           the "Found: N" of a core/get
  itop_seed.py URL USER PWFILE present CLASS IDS   how many of the comma-separated IDS exist
  itop_seed.py URL USER PWFILE create CLASS JSON   create one object, print its id
  itop_seed.py URL USER PWFILE user LOGIN PWFILE2 PROFILE...   a UserLocal with those profiles
The password is read from PWFILE, never from argv.
"""
import json
import subprocess
import sys
import urllib.parse
import urllib.request


class ITop:
    def __init__(self, url, user, pwfile):
        self.url, self.user = url, user
        with open(pwfile) as f:
            self.pw = f.read().strip()

    def call(self, op):
        form = {"version": "1.3", "auth_user": self.user, "auth_pwd": self.pw, "json_data": json.dumps(op)}
        with urllib.request.urlopen(self.url, urllib.parse.urlencode(form).encode(), timeout=120) as r:
            return json.load(r)

    def create(self, cls, fields):
        r = self.call({"operation": "core/create", "class": cls, "comment": "seed", "output_fields": "id",
                       "fields": fields})
        if r.get("code") != 0:
            shown = {k: ("(hidden)" if k == "password" else v) for k, v in fields.items()}
            sys.exit(f"itop_seed: cannot create {cls} {shown}: {r.get('message')}")
        return int(next(iter(r["objects"].values()))["key"])

    def count(self, oql):
        cls = oql.split()[1]
        r = self.call({"operation": "core/get", "class": cls, "key": oql, "output_fields": "id", "limit": 1})
        if r.get("code") != 0:
            sys.exit(f"itop_seed: cannot count {oql}: {r.get('message')}")
        return int(r["message"].split(": ")[1])


def seed(it, tag, n_requests, socket):
    a = it.create("Organization", {"name": f"{tag} A"})
    b = it.create("Organization", {"name": f"{tag} B"})
    p1 = it.create("Person", {"name": "Doe", "first_name": f"{tag} John", "org_id": a})
    p2 = it.create("Person", {"name": "Roe", "first_name": f"{tag} Jane", "org_id": b})
    team = it.create("Team", {"name": f"{tag} Team", "org_id": a, "persons_list": [{"person_id": p1}]})
    loc = it.create("Location", {"name": f"{tag} Site", "org_id": a})
    srv = it.create("Server", {"name": f"{tag} srv1", "org_id": a, "location_id": loc})
    hv = it.create("Hypervisor", {"name": f"{tag} hv1", "org_id": a})
    vm = it.create("VirtualMachine", {"name": f"{tag} vm1", "org_id": a, "virtualhost_id": hv})
    doc = it.create("DocumentNote", {"name": f"{tag} note", "org_id": a, "text": "x"})
    ke = it.create("KnownError", {"name": f"{tag} known error", "org_id": a, "symptom": "slow"})
    ch = it.create("NormalChange", {"title": f"{tag} change", "description": "d", "org_id": a})
    pb = it.create("Problem", {"title": f"{tag} problem", "description": "d", "org_id": a})
    fam = it.create("ServiceFamily", {"name": f"{tag} family"})
    svc = it.create("Service", {"name": f"{tag} service", "org_id": a, "servicefamily_id": fam})
    sub = it.create("ServiceSubcategory", {"name": f"{tag} sub", "service_id": svc})
    sla = it.create("SLA", {"name": f"{tag} SLA", "org_id": a})
    cc = it.create("CustomerContract", {"name": f"{tag} contract", "org_id": a, "provider_id": b})
    ur = it.create("UserRequest", {"title": f"{tag} request 0", "description": "d", "org_id": b, "caller_id": p2,
                                   "functionalcis_list": [{"functionalci_id": srv}]})
    if n_requests > 1:
        sql = f"""
INSERT INTO ticket (operational_status, ref, org_id, caller_id, title, description, description_format,
                    start_date, last_update, finalclass)
  SELECT t.operational_status, t.ref, t.org_id, t.caller_id, CONCAT('{tag} request ', s.seq), t.description,
         t.description_format, t.start_date, t.last_update, t.finalclass
  FROM ticket t JOIN seq_1_to_{n_requests - 1} s WHERE t.id = {ur};
INSERT INTO ticket_request (id) SELECT id FROM ticket WHERE finalclass = 'UserRequest' AND id NOT IN (SELECT id FROM ticket_request);
UPDATE ticket SET ref = CONCAT('R-', LPAD(id, 6, '0')) WHERE title LIKE '{tag} request %';
"""
        subprocess.run(["mariadb", "--no-defaults", f"--socket={socket}", "-uroot", "itop"], input=sql, text=True,
                       check=True)
    got = it.count(f"SELECT UserRequest WHERE org_id = {b}")
    if got != n_requests:
        sys.exit(f"itop_seed: {got} UserRequests in {tag} B, want {n_requests}")
    return {"orgs": [a, b], "persons": [p1, p2], "team": team, "location": loc, "server": srv, "hypervisor": hv,
            "vm": vm, "document": doc, "known_error": ke, "change": ch, "problem": pb, "service": svc,
            "subcategory": sub, "sla": sla, "contract": cc, "family": fam, "request": ur}


def main():
    url, user, pwfile, what = sys.argv[1:5]
    args = sys.argv[5:]
    it = ITop(url, user, pwfile)
    if what == "seed":
        print(json.dumps(seed(it, args[0], int(args[1]), args[2] if len(args) > 2 else None)))
    elif what == "count":
        print(it.count(args[0]))
    elif what == "present":
        ids = [i for i in args[1].split(",") if i]
        print(it.count(f"SELECT {args[0]} WHERE id IN ({','.join(ids)})") if ids else 0)
    elif what == "create":
        print(it.create(args[0], json.loads(args[1])))
    elif what == "user":
        with open(args[1]) as f:
            pw = f.read().strip()
        profiles = [{"profileid": f"SELECT URP_Profiles WHERE name = '{p}'"} for p in args[2:]]
        print(it.create("UserLocal", {"login": args[0], "password": pw, "language": "EN US",
                                      "profile_list": profiles}))
    else:
        sys.exit(f"itop_seed: unknown command {what}")


if __name__ == "__main__":
    main()
