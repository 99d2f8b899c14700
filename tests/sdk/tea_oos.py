"""The tea OOS SDK (alibabacloud_oos20190601 3.7.0, ACS3-HMAC-SHA256, its default) drives a
rolling update with FirstBatchPause against a running rollscale; the ESS calls go through
alibabacloud_ess20220222 signed with RPC v1 (`signature_algorithm="v2"`), so both of tea's
schemes are exercised. See common.py for the configuration and the scenario.
"""

import common
import tea

if __name__ == "__main__":
    common.main(lambda config: tea.run(config, oos_signature="acs3", ess_signature="v2", pause="FirstBatchPause"))
