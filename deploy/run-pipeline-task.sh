#!/usr/bin/env bash
# Run dataferry inside the VPC as the ECS task deploy/aws defines, and report it here:
# register a task definition revision with IMAGE, run it in the private subnets, wait for
# it to stop, print the tail of its log, and exit with its exit code (1 if it had none).
#
#   deploy/run-pipeline-task.sh OUTPUTS_JSON IMAGE [DATAFERRY_ARGS...]
#
# OUTPUTS_JSON: `terraform output -json` of deploy/aws. DATAFERRY_ARGS replace the task's
# command (default: the definition's, `run -c production.yaml ...`). Needs the AWS CLI
# and jq, and credentials allowed what deploy/aws's launcher policy allows.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUTPUTS_JSON IMAGE [DATAFERRY_ARGS...]" >&2
  exit 64
fi
outputs=$1
image=$2
shift 2

out() { jq -er --arg k "$1" '.[$k].value // .[$k] | if type == "array" then join(",") else . end' "$outputs"; }
cluster=$(out pipeline_cluster)
family=$(out pipeline_task_family)
subnets=$(out pipeline_subnet_ids)
security_group=$(out pipeline_security_group_id)
log_group=$(out pipeline_log_group)

# A revision of the definition Terraform keeps, with this commit's image.
definition=$(aws ecs describe-task-definition --task-definition "$family" --query taskDefinition --output json)
revision=$(
  jq --arg image "$image" '
    .containerDefinitions[0].image = $image
    | {family, taskRoleArn, executionRoleArn, networkMode, containerDefinitions, volumes,
       requiresCompatibilities, cpu, memory, runtimePlatform}' <<<"$definition" \
    | aws ecs register-task-definition --cli-input-json file:///dev/stdin \
      --query taskDefinition.taskDefinitionArn --output text
)
echo "task definition: $revision"

overrides='{}'
if [ $# -gt 0 ]; then
  # One argument a line into jq's input: as jq's own arguments, a "-c" among them would be
  # read as one of its options.
  overrides=$(printf '%s\n' "$@" | jq -Rnc '{containerOverrides: [{name: "dataferry", command: [inputs]}]}')
fi
task=$(
  aws ecs run-task \
    --cluster "$cluster" \
    --task-definition "$revision" \
    --launch-type FARGATE \
    --network-configuration "awsvpcConfiguration={subnets=[$subnets],securityGroups=[$security_group],assignPublicIp=DISABLED}" \
    --overrides "$overrides" \
    --started-by "github-${GITHUB_RUN_ID:-manual}" \
    --query 'tasks[0].taskArn' --output text
)
if [ -z "$task" ] || [ "$task" = "None" ]; then
  echo "::error::the task did not start" >&2
  exit 1
fi
echo "task: $task"

# `aws ecs wait tasks-stopped` gives up after 10 minutes; a run may take longer. The job's
# own timeout bounds the whole wait.
until aws ecs wait tasks-stopped --cluster "$cluster" --tasks "$task" 2>/dev/null; do
  status=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" --query 'tasks[0].lastStatus' --output text)
  echo "still $status"
done

stopped=$(aws ecs describe-tasks --cluster "$cluster" --tasks "$task" --query 'tasks[0]' --output json)
code=$(jq -r '.containers[] | select(.name == "dataferry") | .exitCode // empty' <<<"$stopped")
reason=$(jq -r '.stoppedReason // ""' <<<"$stopped")

log=$(
  aws logs get-log-events \
    --log-group-name "$log_group" \
    --log-stream-name "dataferry/dataferry/${task##*/}" \
    --limit 200 --no-start-from-head \
    --query 'events[].message' --output json | jq -r '.[]'
) || log="(no log: $reason)"
echo "---- the last lines of its log ($log_group)"
printf '%s\n' "$log"
echo "----"

# The job summary: the verdict dataferry logged (--log-format json), and the log's tail.
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  verdict=$(jq -Rr 'fromjson? | select(.logger == "dataferry.verdict") | .verdict // .message' <<<"$log" | tail -n 1)
  {
    echo "### dataferry, ECS task \`${task##*/}\`: exit ${code:-none}"
    echo
    [ -n "$verdict" ] && printf '%s\n\n' "\`$verdict\`"
    [ -n "$reason" ] && printf 'Stopped: %s\n\n' "$reason"
    echo "<details><summary>the last lines of its log</summary>"
    echo
    echo '```'
    printf '%s\n' "$log" | tail -n 60
    echo '```'
    echo
    echo "</details>"
  } >> "$GITHUB_STEP_SUMMARY"
fi

if [ -z "$code" ]; then
  echo "::error::the task stopped without an exit code: $reason" >&2
  exit 1
fi
if [ "$code" != 0 ]; then
  echo "::error::dataferry exited $code (exit codes: README, Exit codes)" >&2
fi
exit "$code"
