# mc.isolation: the tenant boundary. Every API route, search and export asks it before it
# touches tenant data.
#
# input:
#   actor:   {subject, tenant (null for appliance-wide admins), roles: [...]}
#   action:  "read" | "run" | "audit" (read the audit log) | "publish" (catalog packages)
#            | "backup" (a copy of the whole data directory, signing key included)
#   subject: {tenant, kind, id}    the data being accessed; tenant null for appliance-wide
#            data (the audit log of every tenant, the package catalog)
#   route:   "GET /api/v1/executions/{id}"
# data.mc.cross_tenant_readers: {actor subject: [tenants it may read]}  (auditors)
package mc.isolation

default allow := false

grants := {
	"read": {"viewer", "operator", "auditor", "admin"},
	"run": {"operator", "admin"},
	"audit": {"auditor", "admin"},
	"publish": {"admin"},
	"backup": {"admin"},
}

role_grants if {
	some role in input.actor.roles
	role in grants[input.action]
}

appliance_admin if {
	input.actor.tenant == null
	"admin" in input.actor.roles
}

cross_tenant_read_granted if {
	input.action in {"read", "audit"}
	"auditor" in input.actor.roles
	input.subject.tenant in object.get(data.mc.cross_tenant_readers, input.actor.subject, [])
}

# The package catalog is shared by every tenant: any actor with a role that grants reading
# may read it. Publishing and installing stay with appliance-wide administrators.
catalog_read if {
	input.subject.tenant == null
	input.subject.kind == "catalog"
	input.action == "read"
	role_grants
}

allow if catalog_read

# Members of the tenant, with a role that grants the action.
allow if {
	input.actor.tenant == input.subject.tenant
	role_grants
}

# Appliance-wide administrators.
allow if appliance_admin

# Auditors reading another tenant where the policy data grants it (always audited).
allow if cross_tenant_read_granted

deny contains reason if {
	not appliance_admin
	input.subject.tenant != null
	input.actor.tenant != input.subject.tenant
	not cross_tenant_read_granted
	reason := {
		"code": "cross_tenant_access",
		"message": sprintf("an actor of tenant %v may not %s data of tenant %v", [input.actor.tenant, input.action, input.subject.tenant]),
	}
}

deny contains reason if {
	input.actor.tenant == input.subject.tenant
	not role_grants
	reason := {
		"code": "role_missing",
		"message": sprintf("roles %v do not grant %s", [input.actor.roles, input.action]),
	}
}

deny contains reason if {
	input.actor.tenant != null
	input.subject.tenant == null
	not catalog_read
	reason := {
		"code": "appliance_only",
		"message": sprintf("only appliance-wide administrators may %s %s", [input.action, input.subject.kind]),
	}
}
