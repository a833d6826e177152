"""The Grafana dashboards, as code (grafana-foundation-sdk's typed builders): Serving, Model and Pipeline.

    python -m monitoring.dashboards          # writes manifests/base/dashboards/*.json

The JSON files are committed: import them in Grafana, or let kustomize ship them as ConfigMaps labelled
``grafana_dashboard: "1"`` for kube-prometheus-stack's Grafana sidecar. A test keeps them equal to what
this module generates, and runs every panel query against a real Prometheus.
"""

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, dashboard, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    GraphTresholdsStyleMode,  # sic: the SDK's spelling
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from monitoring.drift import SIGNIFICANT_PSI

OUTPUT = Path(__file__).resolve().parent.parent / "manifests" / "base" / "dashboards"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SLO_SECONDS = 0.5  # the latency alert's target (monitoring/alerts.rules.yml)

# Every predictor series carries namespace and model (the InferenceService, set by the PodMonitor).
SEL = 'namespace=~"$namespace", model=~"$model"'
VSEL = SEL + ', model_version=~"$version"'
RATE = "[$__rate_interval]"
LEGEND = (
    VizLegendOptions()
    .display_mode(LegendDisplayMode.LIST)
    .placement(LegendPlacement.BOTTOM)
    .show_legend(True)
)
LAST_VALUE = ReduceDataOptions().calcs(["lastNotNull"]).values(False)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    format: PromQueryFormat = PromQueryFormat.TIME_SERIES
    instant: bool = False


def _targets(panel, queries: list[Query]):
    for ref, query in zip("ABCDEFGH", queries, strict=False):
        target = (
            prometheus.Dataquery().expr(query.expr).ref_id(ref).datasource(DATASOURCE).format(query.format)
        )
        target = target.legend_format(query.legend or "__auto")
        panel = panel.with_target(target.instant() if query.instant else target.range())
    return panel


def _thresholds(red_at: float | None):
    steps = [Threshold(value=None, color="green")]
    if red_at is not None:
        steps.append(Threshold(value=red_at, color="red"))
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps)


def series(
    title: str, question: str, unit: str, *queries: Query, red_at: float | None = None, stacked=False, w=12
):
    """A time-series panel; ``question`` (what it answers) becomes its description."""
    panel = timeseries.Panel().title(title).description(question).unit(unit).datasource(DATASOURCE)
    panel = panel.legend(LEGEND).tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI))
    panel = panel.span(w).height(8).thresholds(_thresholds(red_at)).fill_opacity(10)
    if red_at is not None:
        panel = panel.thresholds_style(GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED))
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(60)
    return _targets(panel, list(queries))


def single(
    title: str, question: str, unit: str, *queries: Query, red_at: float | None = None, w=6, mappings=None
):
    """A stat panel showing the latest value of each series."""
    panel = stat.Panel().title(title).description(question).unit(unit).datasource(DATASOURCE)
    panel = panel.reduce_options(LAST_VALUE)
    panel = panel.span(w).height(5).thresholds(_thresholds(red_at))
    if mappings:
        panel = panel.mappings(mappings)
    return _targets(panel, list(queries))


def bars(title: str, question: str, unit: str, *queries: Query, w=12, minimum: float | None = None):
    """Horizontal bars, one per series (latest value)."""
    panel = bargauge.Panel().title(title).description(question).unit(unit).datasource(DATASOURCE)
    panel = panel.reduce_options(LAST_VALUE)
    panel = panel.span(w).height(8).thresholds(_thresholds(None))
    if minimum is not None:
        panel = panel.min(minimum)
    return _targets(panel, list(queries))


def distribution(title: str, question: str, unit: str, bucket_metric: str, w=12):
    """A heat map of a Prometheus histogram's buckets over time."""
    panel = heatmap.Panel().title(title).description(question).datasource(DATASOURCE).span(w).height(8)
    panel = panel.calculate(False).show_legend().show_tooltip().y_axis(heatmap.YAxisConfig().unit(unit))
    query = Query(
        f"sum by (le) (increase({bucket_metric}{{{SEL}}}{RATE}))", "{{le}}", PromQueryFormat.HEATMAP
    )
    return _targets(panel, [query])


def quantiles(metric: str, *qs: float, name: str = "") -> list[Query]:
    """``histogram_quantile`` of each of ``qs`` over the histogram ``metric``, legends "[name] p<q>"."""
    return [
        Query(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SEL}}}{RATE})))",
            f"{name} p{q * 100:g}".strip(),
        )
        for q in qs
    ]


def share(metric: str, by: str, selector: str) -> Query:
    """Each ``by`` value's share of the metric's rate."""
    total = f"scalar(sum(rate({metric}{{{selector}}}{RATE})))"
    return Query(f"sum by ({by}) (rate({metric}{{{selector}}}{RATE})) / {total}", f"{{{{{by}}}}}")


def _variables(board, names: tuple[str, ...]):
    board = board.with_variable(
        dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    )
    queries = {
        "namespace": "label_values(sentiment_model_info, namespace)",
        "model": 'label_values(sentiment_model_info{namespace=~"$namespace"}, model)',
        "version": f"label_values(sentiment_requests_total{{{SEL}}}, model_version)",
        "pipeline_model": "label_values(sentiment_pipeline_last_run_timestamp_seconds, model)",
    }
    for name in names:
        variable_name = "model" if name == "pipeline_model" else name
        variable = (
            dashboard.QueryVariable(variable_name)
            .label(variable_name)
            .datasource(DATASOURCE)
            .query({"query": queries[name], "refId": "variable"})
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
        )
        board = board.with_variable(variable)
    return board


def _board(uid: str, title: str, description: str, variables: tuple[str, ...]):
    board = dashboard.Dashboard(title).uid(uid).description(description).tags(["sentiment", "mlops"])
    return _variables(board.time("now-6h", "now").refresh("30s").timezone("browser").editable(), variables)


def serving_dashboard() -> dict:
    errors = f'{VSEL}, code!~"2..|OK"'
    replicas = [
        Query(
            'sum(kube_horizontalpodautoscaler_status_desired_replicas{namespace=~"$namespace", '
            'horizontalpodautoscaler=~"$model-(v[0-9]+-)?predictor"})',
            "desired (HPA)",
        ),
        Query(
            'sum(kube_deployment_status_replicas_available{namespace=~"$namespace", '
            'deployment=~"$model-(v[0-9]+-)?predictor"})',
            "available (Deployment)",
        ),
        Query(f"count(up{{{SEL}}} == 1)", "scraped and up"),
    ]
    board = _board(
        "sentiment-serving",
        "Sentiment / Serving",
        "The KServe predictor: traffic, errors, latency, batching, replicas and the canary split.",
        ("namespace", "model", "version"),
    )
    return build(
        board.with_row(dashboard.Row("Traffic and errors"))
        .with_panel(
            series(
                "Requests per second by protocol and status",
                "How much traffic, over which API, with which answers?",
                "reqps",
                Query(
                    f"sum by (protocol, code) (rate(sentiment_requests_total{{{VSEL}}}{RATE}))",
                    "{{protocol}} {{code}}",
                ),
            )
        )
        .with_panel(
            series(
                "Error ratio by status",
                "Which share of requests fails, and how (4xx: the client, 5xx: us)?",
                "percentunit",
                Query(
                    f"sum by (code) (rate(sentiment_requests_total{{{errors}}}{RATE})) / "
                    f"scalar(sum(rate(sentiment_requests_total{{{VSEL}}}{RATE})))",
                    "{{code}}",
                ),
                red_at=0.05,
            )
        )
        .with_panel(
            series(
                "Traffic share by model version (canary split)",
                "During a canary: does each version get the share the InferenceService asks for?",
                "percentunit",
                share("sentiment_requests_total", "model_version", SEL),
                stacked=True,
                w=24,
            )
        )
        .with_row(dashboard.Row("Latency and batching"))
        .with_panel(
            series(
                "Request latency p50 / p95 / p99",
                f"Are we inside the {SLO_SECONDS * 1000:.0f} ms p99 SLO?",
                "s",
                *quantiles("sentiment_request_duration_seconds", 0.5, 0.95, 0.99),
                red_at=SLO_SECONDS,
            )
        )
        .with_panel(
            series(
                "Queue wait vs model compute (p95)",
                "Is latency spent waiting for a batch or inside the model?",
                "s",
                *quantiles("sentiment_batch_queue_wait_seconds", 0.95, name="queue wait"),
                *quantiles("sentiment_model_compute_seconds", 0.95, name="compute"),
            )
        )
        .with_panel(
            series(
                "Texts per model call",
                "Is batching working (mean and p95 texts per forward pass)?",
                "short",
                Query(
                    f"sum(rate(sentiment_batch_size_texts_sum{{{SEL}}}{RATE})) / "
                    f"sum(rate(sentiment_batch_size_texts_count{{{SEL}}}{RATE}))",
                    "mean",
                ),
                *quantiles("sentiment_batch_size_texts", 0.95),
            )
        )
        .with_panel(
            series(
                "Replicas",
                "Is the autoscaler keeping up: desired vs available vs answering scrapes?",
                "short",
                *replicas,
            )
        )
        .with_row(dashboard.Row("Model lifecycle"))
        .with_panel(
            single(
                "Serving version",
                "Which registry version, family and runtime does each pod serve?",
                "none",
                Query(
                    f"max by (version, flavour, runtime) (sentiment_model_info{{{SEL}}})",
                    "v{{version}} {{flavour}} {{runtime}}",
                    instant=True,
                ),
                w=12,
            )
        )
        .with_panel(
            single(
                "Model load time",
                "How long did the last model load take (per pod, max)?",
                "s",
                Query(f"max(sentiment_model_load_duration_seconds{{{SEL}}})", "load", instant=True),
            )
        )
        .with_panel(
            single(
                "Model loads in the last hour",
                "Did loads or reloads fail?",
                "short",
                Query(
                    f"sum by (outcome) (increase(sentiment_model_loads_total{{{SEL}}}[1h]))",
                    "{{outcome}}",
                    instant=True,
                ),
            )
        )
    )


def model_dashboard() -> dict:
    board = _board(
        "sentiment-model",
        "Sentiment / Model",
        "What the served model sees and says: class mix, confidence, input length, drift, offline scores.",
        ("namespace", "model", "version"),
    )
    return build(
        board.with_row(dashboard.Row("Predictions"))
        .with_panel(
            series(
                "Predicted-class mix",
                "Has the share of negative / neutral / positive answers moved?",
                "percentunit",
                share("sentiment_predictions_total", "label", VSEL),
                stacked=True,
            )
        )
        .with_panel(
            series(
                "Drift score (PSI) by feature",
                f"Do inputs and answers still look like the reference? Above {SIGNIFICANT_PSI}: significant.",
                "none",
                Query(f"max by (feature) (sentiment_drift_psi{{{SEL}}})", "{{feature}}"),
                red_at=SIGNIFICANT_PSI,
            )
        )
        .with_panel(
            distribution(
                "Confidence distribution",
                "How sure is the model (probability of the predicted class)?",
                "percentunit",
                "sentiment_prediction_confidence_ratio_bucket",
            )
        )
        .with_panel(
            series(
                "Confidence p10 / p50",
                "Is the model getting less sure (low tail and median)?",
                "percentunit",
                *quantiles("sentiment_prediction_confidence_ratio", 0.1, 0.5),
            )
        )
        .with_row(dashboard.Row("Inputs"))
        .with_panel(
            distribution(
                "Input length distribution",
                "What lengths do clients send (characters per text)?",
                "short",
                "sentiment_input_length_characters_bucket",
            )
        )
        .with_panel(
            series(
                "Input length p50 / p95",
                "Are texts getting longer or shorter than usual?",
                "short",
                *quantiles("sentiment_input_length_characters", 0.5, 0.95),
            )
        )
        .with_row(dashboard.Row("Live quality (labels posted to :feedback)"))
        .with_panel(
            series(
                "Live macro recall with its 95 % interval, and the offline test score",
                "Do live labels confirm the pipeline's score? The last day's labels of every replica "
                "(recording rules); the alert fires when the upper bound falls below the offline score "
                "minus 0.05.",
                "percentunit",
                *(
                    Query(
                        f"max by (model_version) (sentiment:live_macro_recall{suffix}:ratio1d{{{VSEL}}})",
                        f"v{{{{model_version}}}} {name}",
                    )
                    for name, suffix in (("value", ""), ("lower", "_lower"), ("upper", "_upper"))
                ),
                Query(
                    f'max(sentiment_model_offline_score{{{SEL}, metric="test_macro_recall"}})', "offline test"
                ),
            )
        )
        .with_panel(
            single(
                "Labelled answers, last day",
                "How many live labels the live-quality scores rest on, per version (every replica summed)",
                "short",
                Query(
                    f"max by (model_version) (sentiment:live_labelled:1d{{{VSEL}}})",
                    "v{{model_version}}",
                    instant=True,
                ),
            )
        )
        .with_row(dashboard.Row("Offline quality and monitoring"))
        .with_panel(
            bars(
                "Champion's offline scores (from the pipeline)",
                "How good was the served version on the test split, out of domain, and by the gate's score?",
                "percentunit",
                Query(
                    f"max by (metric) (sentiment_model_offline_score{{{SEL}}})", "{{metric}}", instant=True
                ),
                minimum=0,
            )
        )
        .with_panel(
            single(
                "Drift window",
                "How many answered texts the drift scores are computed over (per pod, summed)",
                "short",
                Query(f"sum(sentiment_drift_window_texts{{{SEL}}})", "texts", instant=True),
            )
        )
        .with_panel(
            single(
                "Prediction log",
                "Are sampled predictions reaching the log for the monitor step (or dropped)?",
                "short",
                Query(
                    f"sum by (outcome) (increase(sentiment_prediction_log_records_total{{{SEL}}}[1h]))",
                    "{{outcome}}",
                    instant=True,
                ),
            )
        )
    )


def pipeline_dashboard() -> dict:
    sel = 'model=~"$model"'
    decision = [
        ValueMap(
            options={
                "1": ValueMappingResult(text="promoted", color="green"),
                "0": ValueMappingResult(text="champion kept", color="blue"),
            },
        )
    ]
    board = _board(
        "sentiment-pipeline",
        "Sentiment / Pipeline",
        "The pipeline's last runs, pushed by the gate and analyze steps to the Pushgateway: candidates, "
        "decisions and canary verdicts.",
        ("pipeline_model",),
    )
    return build(
        board.with_row(dashboard.Row("Last run"))
        .with_panel(
            single(
                "Gate decision",
                "Did the last run promote its best candidate (which family)?",
                "none",
                Query(
                    f"max by (family) (sentiment_pipeline_gate_promoted{{{sel}}})", "{{family}}", instant=True
                ),
                mappings=decision,
            )
        )
        .with_panel(
            single(
                "Champion version",
                "Which registry version is champion after the last run?",
                "none",
                Query(f"max(sentiment_pipeline_champion_version{{{sel}}})", "version", instant=True),
            )
        )
        .with_panel(
            single(
                "Time since the last run",
                "Is the pipeline running on schedule?",
                "s",
                Query(
                    f"time() - max(sentiment_pipeline_last_run_timestamp_seconds{{{sel}}})",
                    "age",
                    instant=True,
                ),
            )
        )
        .with_panel(
            single(
                "Candidate vs champion",
                "By how much did the best candidate beat (or miss) the champion?",
                "percentunit",
                Query(f"max by (role) (sentiment_pipeline_gate_score{{{sel}}})", "{{role}}", instant=True),
            )
        )
        .with_panel(
            bars(
                "Gate score per candidate",
                "Which family won the last run, on the gate's weighted score?",
                "percentunit",
                Query(
                    f'max by (family) (sentiment_pipeline_candidate_score{{{sel}, set="gate"}})',
                    "{{family}}",
                    instant=True,
                ),
                minimum=0,
            )
        )
        .with_panel(
            bars(
                "Scores per candidate and set",
                "In domain (test) vs out of domain: where does each family stand?",
                "percentunit",
                Query(
                    f'max by (family, set) (sentiment_pipeline_candidate_score{{{sel}, set!="gate"}})',
                    "{{family}} {{set}}",
                    instant=True,
                ),
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Canary analysis"))
        .with_panel(
            single(
                "Canary verdict",
                "What did the last canary analysis decide, for which canary against which stable version?",
                "none",
                Query(
                    f"max by (verdict, canary_version, stable_version) (sentiment_canary_verdict{{{sel}}})",
                    "{{verdict}}: v{{canary_version}} vs v{{stable_version}}",
                    instant=True,
                ),
            )
        )
        .with_panel(
            bars(
                "Canary checks",
                "Which checks passed (1), failed (0) or lacked traffic (-1)?",
                "none",
                Query(f"max by (check) (sentiment_canary_check_passed{{{sel}}})", "{{check}}", instant=True),
                w=6,
            )
        )
        .with_panel(
            bars(
                "Canary p-values",
                "How strong was the evidence (below the analysis' alpha: significant)?",
                "none",
                Query(f"max by (check) (sentiment_canary_check_p_value{{{sel}}})", "{{check}}", instant=True),
                w=6,
                minimum=0,
            )
        )
        .with_panel(
            bars(
                "Canary traffic in the window",
                "How many requests did each version answer in the judged window?",
                "none",
                Query(f"max by (role) (sentiment_canary_requests{{{sel}}})", "{{role}}", instant=True),
                w=6,
                minimum=0,
            )
        )
        .with_row(dashboard.Row("Across runs"))
        .with_panel(
            series(
                "Test score per family, run after run",
                "Is each family getting better or worse over time?",
                "percentunit",
                Query(
                    f'max by (family) (sentiment_pipeline_candidate_score{{{sel}, set="test"}})', "{{family}}"
                ),
            )
        )
        .with_panel(
            series(
                "Gain over the champion and its interval",
                "Was the gain real (interval above 0) when the gate decided?",
                "percentunit",
                Query(f"max by (bound) (sentiment_pipeline_gate_gain_interval{{{sel}}})", "{{bound}}"),
            )
        )
        .with_panel(
            bars(
                "Training time per candidate",
                "What does each family cost to train?",
                "s",
                Query(
                    f"max by (family) (sentiment_pipeline_candidate_train_seconds{{{sel}}})",
                    "{{family}}",
                    instant=True,
                ),
            )
        )
    )


def build(board) -> dict:
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


DASHBOARDS = {
    "sentiment-serving.json": serving_dashboard,
    "sentiment-model.json": model_dashboard,
    "sentiment-pipeline.json": pipeline_dashboard,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=True) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Write the Grafana dashboards' JSON files.")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the folder (default: %(default)s)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> None:
    """``python -m monitoring.dashboards`` with its parsed ``args`` (:func:`parse_args`)."""
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (output / name).write_text(render(name))
        print(f"wrote {output / name}")


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
