package mc.residency_test

import data.mc.residency

req(allowed, region, tasks) := {
	"tenant": {"id": "acme", "allowed_regions": allowed},
	"manifest": {"region": region, "tasks": tasks},
	"appliance": {"locations": {"eu-bucket": "eu-west", "us-bucket": "us-east"}},
}

codes(i) := {r.code | some r in residency.deny with input as i}

test_runs_in_allowed_regions if {
	residency.allow with input as req(["eu-west"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "eu-bucket"}])
}

test_no_allowed_regions_means_every_region if {
	residency.allow with input as req([], "us-east", [])
}

test_regions_outside_the_tenant_are_refused if {
	codes(req(["eu-west"], "us-east", [])) == {"region_not_allowed"}
}

test_artifacts_stay_in_the_workflow_region if {
	codes(req(["eu-west", "us-east"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "us-bucket"}])) == {"location_outside_region"}
}

test_artifacts_in_forbidden_regions if {
	codes(req(["eu-west"], "eu-west", [{"id": "a", "uses": "builtin/artifact", "location": "us-bucket"}])) == {"location_outside_region", "location_region_not_allowed"}
}
