# mc.residency: data stays in its region. At admission, a run whose region, or whose artifact
# locations, fall outside the tenant's allowed regions is denied.
#
# When the residency auditor enforces, open violations block the tenant's new runs that use
# an affected location (or could: an artifact location computed at run time), or that run in
# an affected region.
#
# input:
#   tenant:    {id, allowed_regions (empty: every region),
#               blocked: {locations: [name], regions: [region]}}
#   manifest:  {region, tasks: [{id, uses, location?}]}
#   appliance: {locations: {name: region}, node_region (null: not declared)}
package mc.residency

default allow := false

allow if count(deny) == 0

region_allowed(region) if count(input.tenant.allowed_regions) == 0

region_allowed(region) if region in input.tenant.allowed_regions

deny contains reason if {
	not region_allowed(input.manifest.region)
	reason := {
		"code": "region_not_allowed",
		"message": sprintf("tenant %s may not run in region %q (allowed: %v)", [input.tenant.id, input.manifest.region, input.tenant.allowed_regions]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/artifact"
	region := input.appliance.locations[task.location]
	region != input.manifest.region
	reason := {
		"code": "location_outside_region",
		"message": sprintf("task %q writes to %q in region %q, but the workflow's data must stay in %q", [task.id, task.location, region, input.manifest.region]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/artifact"
	region := input.appliance.locations[task.location]
	not region_allowed(region)
	reason := {
		"code": "location_region_not_allowed",
		"message": sprintf("task %q writes to %q in region %q, which tenant %s may not use", [task.id, task.location, region, input.tenant.id]),
	}
}

deny contains reason if {
	node := input.appliance.node_region
	is_string(node)
	node != input.manifest.region
	reason := {
		"code": "node_outside_region",
		"message": sprintf("this node runs in region %q, but the workflow's data must stay in %q", [node, input.manifest.region]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/artifact"
	task.location in input.tenant.blocked.locations
	reason := {
		"code": "residency_violation_open",
		"message": sprintf("task %q writes to %q, which has an open residency violation for tenant %s; resolve it first", [task.id, task.location, input.tenant.id]),
	}
}

deny contains reason if {
	some task in input.manifest.tasks
	task.uses == "builtin/artifact"
	not task.location
	count(input.tenant.blocked.locations) > 0
	reason := {
		"code": "residency_violation_open",
		"message": sprintf("task %q chooses its location at run time while tenant %s has open residency violations in %v; name the location", [task.id, input.tenant.id, input.tenant.blocked.locations]),
	}
}

deny contains reason if {
	input.manifest.region in input.tenant.blocked.regions
	reason := {
		"code": "residency_violation_open",
		"message": sprintf("tenant %s has an open residency violation in region %q; resolve it first", [input.tenant.id, input.manifest.region]),
	}
}
