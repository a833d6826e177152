"""The training pipeline: ingest -> validate -> preprocess -> three candidates trained in parallel (a
linear classifier on sentence embeddings, one on TF-IDF n-grams, a fine-tuned transformer) and their
soft-voting ensemble -> evaluate each (on the test split and the out-of-domain sets) -> gate -> deploy
-> analyze (a canary, on a cluster)."""

from kfp import compiler, dsl, kubernetes

from components.analyze import analyze
from components.deploy import deploy
from components.embedding_reference import embedding_reference
from components.ensemble import ensemble
from components.evaluate import evaluate
from components.gate import gate
from components.ingest import ingest
from components.monitor import monitor
from components.prepare_out_of_domain import prepare_out_of_domain
from components.preprocess import preprocess
from components.retrain import finish_retraining, no_retraining, prepare_retraining
from components.train_linear import train_linear
from components.train_transformer import train_transformer
from components.validate import validate
from pipelines.task_settings import ClusterConfig, configure

PIPELINE_NAME = "sentiment-training"
MONITORING_PIPELINE_NAME = "sentiment-monitoring"
# On a cluster every step reads the MinIO credentials from this Secret and the S3 endpoint from this
# ConfigMap (namespace kubeflow; manifests/kfp), for s3:// sources and MLflow's artifacts in MinIO.
OBJECT_STORE_SECRET = "minio-credentials"
OBJECT_STORE_CONFIG_MAP = "object-store"


def with_object_store(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Expose the object store's credentials and endpoint to ``task`` as env (ignored by kfp.local)."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    kubernetes.use_secret_as_env(task, OBJECT_STORE_SECRET, secret_key_to_env={k: k for k in keys})
    kubernetes.use_config_map_as_env(
        task,
        OBJECT_STORE_CONFIG_MAP,
        config_map_key_to_env={"MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL"},
    )
    return task


def training_pipeline(cluster: ClusterConfig):
    """The training pipeline, its tasks configured by ``cluster`` (pipelines/task_settings.py)."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train sentiment classifiers of two families, evaluate them, gate the best into MLflow.",
    )
    def sentiment_pipeline(
        run: dict,
        ingest_config: dict,
        validate_config: dict,
        preprocess_config: dict,
        out_of_domain_config: dict,
        train_linear_config: dict,
        train_transformer_config: dict,
        ensemble_config: dict,
        gate_config: dict,
        deploy_config: dict,
        canary_analysis_config: dict,
        monitor_config: dict,
        tracking_uri: str,
        lineage: str,
        data_fingerprints: str,
    ) -> str:
        """One parameter per section of ``params.yaml`` (pipelines/params.py), plus where MLflow is
        (``tracking_uri``), every parameter as flat JSON (``lineage``), logged to each candidate's run, and
        what the data sources hold (``data_fingerprints``), for the cache keys of the steps that read them.
        Returns the gate's decision as JSON; the deploy step then serves the promoted version.
        """
        ingested = ingest(config=ingest_config, run=run, fingerprints=data_fingerprints)
        validated = validate(raw=ingested.outputs["dataset"], config=validate_config)
        splits = preprocess(clean=validated.outputs["clean"], config=preprocess_config, run=run)
        train, validation, test = (splits.outputs[name] for name in ("train", "validation", "test"))
        prepared = prepare_out_of_domain(
            config=out_of_domain_config, validate=validate_config, run=run, fingerprints=data_fingerprints
        )
        out_of_domain = prepared.outputs["out_of_domain"]
        embedded = embedding_reference(train=train, config=monitor_config, run=run)
        shared = {"run": run, "tracking_uri": tracking_uri, "lineage": lineage}
        candidates = {}
        for featurizer in ("embeddings", "tfidf"):
            candidates[f"linear_{featurizer}"] = train_linear(
                train=train,
                validation=validation,
                featurizer=featurizer,
                config=train_linear_config,
                **shared,
            ).set_display_name(f"train-linear-{featurizer}")
        candidates["transformer"] = train_transformer(
            train=train, validation=validation, config=train_transformer_config, **shared
        )
        members = {}
        for name, task in candidates.items():
            members[name] = task.outputs["model"]
            members[f"{name}_predictions"] = task.outputs["validation_predictions"]
        candidates["ensemble"] = ensemble(**members, validation=validation, config=ensemble_config, **shared)
        evaluations = {
            name: evaluate(
                model=task.outputs["model"],
                test=test,
                out_of_domain=out_of_domain,
                embedding_reference=embedded.outputs["reference"],
                tracking_uri=tracking_uri,
            ).set_display_name(f"evaluate-{name.replace('_', '-')}")
            for name, task in candidates.items()
        }
        gated = gate(
            **{name: task.outputs["predictions"] for name, task in evaluations.items()},
            test=test,
            out_of_domain=out_of_domain,
            config=gate_config,
            run=run,
            ingest=ingest_config,
            tracking_uri=tracking_uri,
        )
        deployed = deploy(decision=gated.output, config=deploy_config, run=run, tracking_uri=tracking_uri)
        analyzed = analyze(
            outcome=deployed.outputs["Output"],
            config=canary_analysis_config,
            deploy=deploy_config,
            run=run,
            tracking_uri=tracking_uri,
        )
        steps = [
            ("ingest", ingested),
            ("validate", validated),
            ("preprocess", splits),
            ("prepare_out_of_domain", prepared),
            ("embedding_reference", embedded),
            *(("train_linear", candidates[f"linear_{f}"]) for f in ("embeddings", "tfidf")),
            ("train_transformer", candidates["transformer"]),
            ("ensemble", candidates["ensemble"]),
            *(("evaluate", task) for task in evaluations.values()),
            ("gate", gated),
            ("deploy", deployed),
            ("analyze", analyzed),
        ]
        for step, task in steps:
            with_object_store(configure(task, step, cluster))
        return gated.output

    return sentiment_pipeline


def monitoring_pipeline(cluster: ClusterConfig):
    """The monitoring pipeline, its tasks (the nested training pipeline's included) configured for a
    cluster by ``cluster``."""
    training = training_pipeline(cluster)

    @dsl.pipeline(
        name=MONITORING_PIPELINE_NAME,
        description="Judge the served model's logs (drift, live quality); retrain on the feedback if needed.",
    )
    def sentiment_monitoring(
        predictions: str,
        model_uri: str,
        monitor_config: dict,
        retrain_config: dict,
        run: dict,
        ingest_config: dict,
        validate_config: dict,
        preprocess_config: dict,
        out_of_domain_config: dict,
        train_linear_config: dict,
        train_transformer_config: dict,
        ensemble_config: dict,
        gate_config: dict,
        deploy_config: dict,
        canary_analysis_config: dict,
        tracking_uri: str,
        lineage: str,
    ) -> str:
        """monitor -> prepare_retraining -> (if it starts one) the training pipeline on the usual data plus
        the feedback -> finish_retraining with the gate's decision. Schedule it as a recurring run on the
        cluster (make schedule). The training sections are the training pipeline's parameters; ``lineage``
        is every parameter, flat. Returns the outcome as JSON (with the gate's verdict when it retrained)."""
        judged = monitor(
            predictions=predictions, model_uri=model_uri, config=monitor_config, tracking_uri=tracking_uri
        )
        prepared = prepare_retraining(
            decision=judged.outputs["Output"],
            predictions=predictions,
            config=retrain_config,
            run=run,
            ingest=ingest_config,
            out_of_domain=out_of_domain_config,
            lineage=lineage,
            tracking_uri=tracking_uri,
        )
        for step, task in (("monitor", judged), ("prepare_retraining", prepared)):
            with_object_store(configure(task, step, cluster))
        with dsl.If(prepared.outputs["start"] == True, name="retraining"):  # noqa: E712 (a KFP condition)
            retrained = training(
                run=run,
                ingest_config=prepared.outputs["ingest"],
                validate_config=validate_config,
                preprocess_config=preprocess_config,
                out_of_domain_config=prepared.outputs["out_of_domain"],
                train_linear_config=train_linear_config,
                train_transformer_config=train_transformer_config,
                ensemble_config=ensemble_config,
                gate_config=gate_config,
                deploy_config=deploy_config,
                canary_analysis_config=canary_analysis_config,
                monitor_config=monitor_config,
                tracking_uri=tracking_uri,
                lineage=prepared.outputs["lineage"],
                data_fingerprints=prepared.outputs["data_fingerprints"],
            )
            finished = finish_retraining(
                outcome=prepared.outputs["outcome"], decision=retrained.output, tracking_uri=tracking_uri
            )
            with_object_store(configure(finished, "finish_retraining", cluster))
        # kfp.local (2.17.3) resolves a condition on a named output only inside an If/Else group: the
        # Else branch passes the outcome through, so the run returns one outcome either way (OneOf)
        with dsl.Else(name="no-retraining"):
            skipped = no_retraining(outcome=prepared.outputs["outcome"])
            configure(skipped, "no_retraining", cluster)
        return dsl.OneOf(finished.output, skipped.output)

    return sentiment_monitoring


def compile_pipeline(package_path: str, pipeline) -> str:
    """Compile ``pipeline`` (e.g. ``training_pipeline(params.cluster)``) to IR YAML at ``package_path``."""
    compiler.Compiler().compile(pipeline, package_path)
    return package_path
