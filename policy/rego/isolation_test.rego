package mc.isolation_test

import data.mc.isolation

actor(tenant, roles) := {"subject": "token:t", "tenant": tenant, "roles": roles}

req(a, action, tenant) := {"actor": a, "action": action, "subject": {"tenant": tenant, "kind": "execution", "id": "ex_1"}}

test_members_read_their_tenant if {
	isolation.allow with input as req(actor("acme", ["viewer"]), "read", "acme")
}

test_operators_run_in_their_tenant if {
	isolation.allow with input as req(actor("acme", ["operator"]), "run", "acme")
}

test_viewers_do_not_run if {
	not isolation.allow with input as req(actor("acme", ["viewer"]), "run", "acme")
	some r in isolation.deny with input as req(actor("acme", ["viewer"]), "run", "acme")
	r.code == "role_missing"
}

test_other_tenants_are_denied if {
	not isolation.allow with input as req(actor("acme", ["admin"]), "read", "globex")
	some r in isolation.deny with input as req(actor("acme", ["admin"]), "read", "globex")
	r.code == "cross_tenant_access"
}

test_appliance_admins_reach_every_tenant if {
	isolation.allow with input as req(actor(null, ["admin"]), "run", "globex")
	count(isolation.deny) == 0 with input as req(actor(null, ["admin"]), "run", "globex")
}

test_actors_without_a_tenant_need_admin if {
	not isolation.allow with input as req(actor(null, ["viewer"]), "read", "globex")
}

test_auditors_need_a_grant if {
	not isolation.allow with input as req(actor("globex", ["auditor"]), "read", "acme")
}

test_auditors_read_granted_tenants if {
	isolation.allow with input as req(actor("globex", ["auditor"]), "read", "acme")
		with data.mc.cross_tenant_readers as {"token:t": ["acme"]}
}

test_auditors_never_run_across_tenants if {
	not isolation.allow with input as req(actor("globex", ["auditor"]), "run", "acme")
		with data.mc.cross_tenant_readers as {"token:t": ["acme"]}
}

test_the_audit_log_needs_auditor_or_admin if {
	not isolation.allow with input as req(actor("acme", ["operator"]), "audit", "acme")
	isolation.allow with input as req(actor("acme", ["auditor"]), "audit", "acme")
	isolation.allow with input as req(actor("acme", ["admin"]), "audit", "acme")
}

test_auditors_read_granted_audit_logs if {
	not isolation.allow with input as req(actor("globex", ["auditor"]), "audit", "acme")
	isolation.allow with input as req(actor("globex", ["auditor"]), "audit", "acme")
		with data.mc.cross_tenant_readers as {"token:t": ["acme"]}
}

catalog(a, action) := {"actor": a, "action": action, "subject": {"tenant": null, "kind": "catalog", "id": null}}

test_every_reader_reads_the_catalog if {
	isolation.allow with input as catalog(actor("acme", ["viewer"]), "read")
	isolation.allow with input as catalog(actor(null, ["auditor"]), "read")
	not isolation.allow with input as catalog(actor("acme", []), "read")
}

test_only_appliance_admins_publish if {
	isolation.allow with input as catalog(actor(null, ["admin"]), "publish")
	not isolation.allow with input as catalog(actor("acme", ["admin"]), "publish")
	some r in isolation.deny with input as catalog(actor("acme", ["admin"]), "publish")
	r.code == "appliance_only"
	not isolation.allow with input as catalog(actor(null, ["auditor"]), "publish")
	some m in isolation.deny with input as catalog(actor(null, ["auditor"]), "publish")
	m.code == "role_missing"
}

backup(a) := {"actor": a, "action": "backup", "subject": {"tenant": null, "kind": "backup", "id": null}}

test_only_appliance_admins_back_up if {
	isolation.allow with input as backup(actor(null, ["admin"]))
	not isolation.allow with input as backup(actor(null, ["auditor"]))
	not isolation.allow with input as backup(actor("acme", ["admin"]))
	some r in isolation.deny with input as backup(actor("acme", ["admin"]))
	r.code == "appliance_only"
}

test_tenant_members_do_not_read_appliance_audit if {
	a := {"actor": actor("acme", ["admin"]), "action": "audit", "subject": {"tenant": null, "kind": "audit", "id": null}}
	not isolation.allow with input as a
	some r in isolation.deny with input as a
	r.code == "appliance_only"
}
