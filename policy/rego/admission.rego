# mc.admission: who may run what. Evaluated for every submission; the decision is stored with
# the execution and in its receipt.
#
# input:
#   actor:     {subject, tenant, roles}
#   tenant:    {id, allowed_regions}
#   execution: {id, canary}
#   manifest:  {name, version, region, digest,
#               tasks: [{id, uses, location?, url_host?, url_port?}]}  (literal values only)
#   appliance: {exec_enabled, http_allowed: [{host, port}], locations: {name: region}}
package mc.admission

default allow := false

allow if count(deny) == 0

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/exec"
	not input.appliance.exec_enabled
	reason := {
		"code": "action_disabled",
		"message": sprintf("task %q uses builtin/exec, which is disabled on this appliance", [task.id]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/http"
	task.url_host
	not host_allowed(task)
	reason := {
		"code": "host_not_allowed",
		"message": sprintf("task %q calls host %q, which is not allow-listed", [task.id, task.url_host]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/artifact"
	task.location
	not input.appliance.locations[task.location]
	reason := {
		"code": "unknown_location",
		"message": sprintf("task %q writes to unknown storage location %q", [task.id, task.location]),
	}
}

deny contains reason if {
	input.execution.canary
	not canary_role
	reason := {
		"code": "canary_not_allowed",
		"message": "synthetic (canary) runs need the operator or admin role",
	}
}

host_allowed(task) if {
	some entry in input.appliance.http_allowed
	entry.host == task.url_host
	entry.port == null
}

host_allowed(task) if {
	some entry in input.appliance.http_allowed
	entry.host == task.url_host
	entry.port == task.url_port
}

canary_role if {
	some role in input.actor.roles
	role in {"operator", "admin"}
}
