"""What humans read on the forge: PR bodies, reports, plots, the dashboard, requests, Actions I/O."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.publish.actions import (
        annotate_error,
        annotate_notice,
        append_summary,
        in_actions,
        job_summary_extras,
        set_output,
        untrusted_block,
    )
    from darwin_bot.publish.hitl import (
        APPROVED_LABEL,
        DECLINED_LABEL,
        REQUEST_LABEL,
        RequestState,
        dependency_name,
        pending_lines,
        pending_requests,
        read_requests,
    )
    from darwin_bot.publish.publisher import ForgePublisher, make_publisher
    from darwin_bot.publish.report import (
        fitness_plot,
        generation_summary_markdown,
        leaderboard_text,
        lineage_text,
        seed_perplexity,
    )


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "APPROVED_LABEL",
    "DECLINED_LABEL",
    "ForgePublisher",
    "REQUEST_LABEL",
    "RequestState",
    "annotate_error",
    "annotate_notice",
    "append_summary",
    "dependency_name",
    "fitness_plot",
    "generation_summary_markdown",
    "in_actions",
    "job_summary_extras",
    "leaderboard_text",
    "lineage_text",
    "make_publisher",
    "pending_lines",
    "pending_requests",
    "read_requests",
    "seed_perplexity",
    "set_output",
    "untrusted_block",
]
_HOMES = {
    "APPROVED_LABEL": ".hitl",
    "DECLINED_LABEL": ".hitl",
    "ForgePublisher": ".publisher",
    "REQUEST_LABEL": ".hitl",
    "RequestState": ".hitl",
    "annotate_error": ".actions",
    "annotate_notice": ".actions",
    "append_summary": ".actions",
    "dependency_name": ".hitl",
    "fitness_plot": ".report",
    "generation_summary_markdown": ".report",
    "in_actions": ".actions",
    "job_summary_extras": ".actions",
    "leaderboard_text": ".report",
    "lineage_text": ".report",
    "make_publisher": ".publisher",
    "pending_lines": ".hitl",
    "pending_requests": ".hitl",
    "read_requests": ".hitl",
    "seed_perplexity": ".report",
    "set_output": ".actions",
    "untrusted_block": ".actions",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
