"""The tea ESS SDK (alibabacloud_ess20220222 1.13.3, ESS 2022-02-22, ACS3-HMAC-SHA256) drives
the ESS operations with that version's names (`InstanceIds.N`, `Processes.N`,
`ScalingGroupIds.N`) and plain-array responses, and a rolling update with EveryBatchPause
whose OOS calls go through alibabacloud_oos20190601, also with ACS3; then a group's
HealthCheckTypes through the typed models, and the health checker's observations. See common.py
for the configuration and the scenario.
"""

import common
import tea


def run(config):
    tea.run(config, oos_signature="acs3", ess_signature="acs3", pause="EveryBatchPause")
    tea.health_checks(tea.TeaApi(config, config.access_key_secret, "acs3", "acs3"), config)


if __name__ == "__main__":
    common.main(run)
