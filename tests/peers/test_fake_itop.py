#!/usr/bin/env python3
"""Checks that fake_itop.py behaves as the notes say a real iTop does."""
import json
import os
import sys
import threading
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fake_itop  # noqa: E402


class FakeITopTest(unittest.TestCase):
    def setUp(self):
        self.srv, self.store = fake_itop.make_server(0, do_seed=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/webservices/rest.php"

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def call(self, op, user="rest", pw="rest-pw", version="1.3", raw=None, drop=()):
        form = {"version": version, "auth_user": user, "auth_pwd": pw, "json_data": json.dumps(op)}
        for k in drop:
            form.pop(k)
        data = raw if raw is not None else urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url, data=data)) as r:
            self.assertEqual(r.status, 200)  # always 200, errors included
            return json.loads(r.read())

    def count(self, cls):
        return int(self.call({"operation": "core/get", "class": cls, "key": f"SELECT {cls}", "limit": 1})
                   ["message"].split(": ")[1])

    def test_codes(self):
        self.assertEqual(self.call({"operation": "core/get"}, pw="bad")["code"], 1)
        self.assertIn("not authorized to use the web services",
                      self.call({"operation": "list_operations"}, user="admin-norest")["message"])
        self.assertEqual(self.call({}, drop=("version",))["code"], 2)
        self.assertEqual(self.call({}, drop=("json_data",))["code"], 3)
        form = urllib.parse.urlencode({"version": "1.3", "auth_user": "rest", "auth_pwd": "rest-pw",
                                       "json_data": "{not json"}).encode()
        self.assertEqual(self.call(None, raw=form)["code"], 4)
        self.assertEqual(self.call({"operation": "list_operations"}, version="9.9")["code"], 10)
        self.assertEqual(self.call({"operation": "core/nope"})["code"], 11)
        self.assertEqual(self.call({"class": "Person"})["code"], 100)  # no operation
        self.assertEqual(self.call({"operation": "core/get", "class": "Nope", "key": 1})["code"], 100)
        self.assertEqual(self.call({"operation": "core/get", "class": "Person", "key": "SELEC"})["code"], 100)
        self.assertEqual(self.call({"operation": "core/get", "class": "Person", "key": "SELECT Person",
                                    "limit": 1, "page": 0})["code"], 13)
        self.assertEqual(self.call({"operation": "core/delete", "class": "SLT", "key": 1})["code"], 100)  # no comment
        self.assertEqual(self.call({"operation": "core/delete", "class": "SLT", "key": 1, "comment": "x"},
                                   user="readonly")["code"], 1)

    def test_get_counts_whole_set_and_null_objects(self):
        r = self.call({"operation": "core/get", "class": "UserRequest", "key": "SELECT UserRequest", "limit": 1})
        self.assertEqual(r["message"], "Found: 30")
        self.assertEqual(len(r["objects"]), 1)
        obj = next(iter(r["objects"].values()))
        self.assertIsInstance(obj["key"], str)
        r = self.call({"operation": "core/get", "class": "Person", "key": "SELECT Person WHERE id IN (999)"})
        self.assertEqual(r["message"], "Found: 0")
        self.assertIsNone(r["objects"])
        r = self.call({"operation": "core/get", "class": "Person", "key": "SELECT Person WHERE id NOT IN (1)"})
        self.assertEqual(r["message"], "Found: 3")
        r = self.call({"operation": "core/get", "class": "Person", "key": {"name": "Admin"}})
        self.assertEqual(r["message"], "Found: 1")

    def test_get_rejects_credentials_in_query(self):
        url = self.url + "?" + urllib.parse.urlencode({"version": "1.3", "auth_user": "rest", "auth_pwd": "rest-pw",
                                                      "json_data": json.dumps({"operation": "list_operations"})})
        with urllib.request.urlopen(url) as r:
            self.assertEqual(json.loads(r.read())["code"], 1)

    def test_simulate_is_php_truthy_and_changes_nothing(self):
        for sim in (True, "false", "no", 1):
            r = self.call({"operation": "core/delete", "class": "SLT", "key": "SELECT SLT", "comment": "t",
                           "simulate": sim})
            self.assertEqual(r["code"], 0)
            self.assertTrue(r["message"].startswith("SIMULATING: Deleted: 3"), r["message"])
        self.assertEqual(self.count("SLT"), 3)

    def test_blockers(self):
        # Organization is blocked by Persons etc.: 2+ objects -> 12, one object -> 100.
        r = self.call({"operation": "core/delete", "class": "Organization", "key": "SELECT Organization",
                       "comment": "t", "simulate": True})
        self.assertEqual(r["code"], 12)
        self.assertTrue(any(o["code"] == 4 for o in r["objects"].values()))
        r = self.call({"operation": "core/delete", "class": "Organization", "key": 2, "comment": "t",
                       "simulate": True})
        self.assertEqual(r["code"], 100)

    def test_real_delete_is_not_atomic(self):
        # Service 1..3: each blocked by its subcategory; unblock the first only.
        self.call({"operation": "core/delete", "class": "ServiceSubcategory", "key": 1, "comment": "t"})
        r = self.call({"operation": "core/delete", "class": "Service", "key": "SELECT Service", "comment": "t"})
        self.assertEqual(r["code"], 100)
        self.assertNotIn("objects", r)
        self.assertTrue(r["message"].startswith("Error: Found issue(s)"))
        self.assertEqual(self.count("Service"), 2)  # the first one went anyway

    def test_cascade_and_reset(self):
        # Tickets go silently with their Organization; a Person's deletion resets callers and User.contactid.
        r = self.call({"operation": "core/delete", "class": "Person", "key": 2, "comment": "t"})
        self.assertEqual(r["code"], 0)
        self.assertTrue(any(o["code"] == 5 for o in r["objects"].values()))
        for cls in ("UserRequest", "Incident", "ServiceSubcategory", "Service", "CustomerContract", "SLA", "SLT",
                    "Team", "Location"):
            self.call({"operation": "core/delete", "class": cls, "key": f"SELECT {cls}", "comment": "t"})
        r = self.call({"operation": "core/delete", "class": "Person", "key": "SELECT Person WHERE id NOT IN (1)",
                       "comment": "t"})
        self.assertEqual(r["code"], 0)
        r = self.call({"operation": "core/delete", "class": "Organization",
                       "key": "SELECT Organization WHERE id NOT IN (1)", "comment": "t"})
        self.assertEqual(r["code"], 0, r["message"])
        self.assertEqual(r["message"], "Deleted: 3")
        self.assertEqual(self.count("Organization"), 1)
        self.assertEqual(self.count("Person"), 1)

    def test_ticket_cascade_message(self):
        org = self.call({"operation": "core/create", "class": "Organization", "comment": "t",
                         "fields": {"name": "Solo"}})
        oid = next(iter(org["objects"].values()))["key"]
        for k in range(2):
            self.call({"operation": "core/create", "class": "UserRequest", "comment": "t",
                       "fields": {"name": f"r{k}", "org_id": oid}})
        r = self.call({"operation": "core/delete", "class": "Organization", "key": int(oid), "comment": "t"})
        self.assertEqual(r["message"], "Deleted: 1 plus (for DB integrity) 2")


if __name__ == "__main__":
    unittest.main(verbosity=1)
