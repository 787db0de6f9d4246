# mc.residency: data stays in its region. At admission, a run whose region, or whose artifact
# locations, fall outside the tenant's allowed regions is denied.
#
# input:
#   tenant:    {id, allowed_regions}   (empty: every region)
#   manifest:  {region, tasks: [{id, uses, location?}]}
#   appliance: {locations: {name: region}}
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
