"""`corral image ls|rm` and `corral registry gc`: the manager's image registry.

Pushing and pulling is for the usual tools (`docker push 127.0.0.1:5000/app:2`,
`skopeo`); these commands list, untag and collect garbage through the manager.
"""

import typer

from corral.cli.output import ManagerOption, OutputOption, call, check_output, emit, emit_one, size

app = typer.Typer(help="Images in the cluster's registry.", no_args_is_help=True)
registry_app = typer.Typer(help="The cluster's image registry.", no_args_is_help=True)


@app.command("ls")
def list_images(output: str = OutputOption, manager: str | None = ManagerOption) -> None:
    """List repositories and tags with their digests and sizes."""
    check_output(output)
    rows = call(manager, lambda c: c.get("/v1/images"))
    emit(
        rows,
        output,
        [
            ("REPOSITORY", lambda r: r["repository"]),
            ("TAG", lambda r: r["tag"]),
            ("DIGEST", lambda r: r["digest"][:19]),
            ("SIZE", lambda r: size(r["size"])),
        ],
    )


@app.command("rm")
def remove_image(reference: str = typer.Argument(..., help="REPOSITORY:TAG"), manager: str | None = ManagerOption) -> None:
    """Remove a tag; `corral registry gc` then frees what nothing else uses."""
    removed = call(manager, lambda c: c.request("DELETE", f"/v1/images/{reference}"))
    typer.echo(f"untagged {removed['repository']}:{removed['tag']} ({removed['digest']})")


@registry_app.command("gc")
def gc(
    grace: float = typer.Option(3600.0, "--grace", help="leave blobs younger than this many seconds (pushes in flight)"),
    output: str = OutputOption,
    manager: str | None = ManagerOption,
) -> None:
    """Remove untagged manifests and blobs nothing needs; images of services and tasks are kept."""
    check_output(output)
    report = call(manager, lambda c: c.request("POST", "/v1/registry/gc", params={"grace": grace}))
    if output == "json":
        emit_one(report)
        return
    typer.echo(
        f"removed {len(report['removed_manifests'])} manifests and {len(report['removed_blobs'])} blobs, "
        f"freed {size(report['freed_bytes'])}; kept {report['kept_blobs']} blobs"
    )
