"""The fake Slack lives in the package (`monitor.simulator.slack`): the demo posts to it too."""

from monitor.simulator.slack import FakeSlack, Recorded, slack_problems

__all__ = ["FakeSlack", "Recorded", "slack_problems"]
