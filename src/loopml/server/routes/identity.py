"""``/whoami``, ``/users`` and ``/tokens``: identities, roles per project, API tokens (admin only, but
everyone may see and revoke their own tokens)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request

from loopml.governance.identity import (
    Identity,
    create_token,
    create_user,
    disable_user,
    get_user,
    grant,
    list_tokens,
    list_users,
    revoke_role,
    revoke_token,
    token_owner,
)
from loopml.server._auth import Ctx, allow, authenticated
from loopml.server._errors import ERROR_RESPONSES
from loopml.server._pagination import Page, PageParams, page_of, page_params
from loopml.server._schemas import (
    IdentityOut,
    ReasonIn,
    Role,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from loopml.workspace import Workspace

router = APIRouter(tags=["identity"], responses=ERROR_RESPONSES)

USER = Path(min_length=1, max_length=128, description="User name")
PROJECT = Path(min_length=1, max_length=128, description="Project name, or * for every project")
TOKEN_ID = Path(min_length=1, max_length=32, description="The public id of a token (lml_<id>_...)")


def _own_user(request: Request, identity: Identity, _ws: Workspace) -> str:
    # Anyone may list their own tokens; other users' need token.admin.
    return "token.self" if request.path_params.get("name") == identity.name else "token.admin"


def _own_token(request: Request, identity: Identity, ws: Workspace) -> str:
    token_id = str(request.path_params.get("token_id", ""))
    if identity.token_id == token_id:
        return "token.self"
    try:
        return "token.self" if token_owner(ws, token_id) == identity.name else "token.admin"
    except LookupError:
        return "token.admin"  # unknown ids are only reported to admins (no probing)


@router.get("/whoami", response_model=IdentityOut, summary="Who the token belongs to, with its permissions")
def whoami(ctx: Ctx = Depends(authenticated())) -> dict[str, Any]:
    return {**ctx.identity.to_dict(), "project": ctx.project,
            "permissions": sorted(ctx.identity.permissions(ctx.project))}


@router.get("/users", response_model=Page[UserOut], summary="List users")
def users(page: PageParams = Depends(page_params), ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return page_of(list_users(ctx.ws), page)


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user")
def add_user(body: UserIn, ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return create_user(ctx.ws, body.name, email=body.email, roles=body.roles).to_dict()


@router.get("/users/{name}", response_model=UserOut, summary="Show a user and its roles")
def show_user(name: str = USER, ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return get_user(ctx.ws, name).to_dict()


@router.post("/users/{name}/disable", response_model=UserOut, summary="Disable a user (its tokens stop working)")
def disable(name: str = USER, body: ReasonIn | None = None, ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return disable_user(ctx.ws, name, reason=body.reason if body else None).to_dict()


@router.put("/users/{name}/roles/{project}/{role}", response_model=UserOut, summary="Grant a role in a project")
def grant_role(role: Role, name: str = USER, project: str = PROJECT,
               ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return grant(ctx.ws, name, role, project).to_dict()


@router.delete("/users/{name}/roles/{project}/{role}", response_model=UserOut, summary="Revoke a role in a project")
def revoke(role: Role, name: str = USER, project: str = PROJECT,
           ctx: Ctx = Depends(allow("user.admin"))) -> dict[str, Any]:
    return revoke_role(ctx.ws, name, role, project).to_dict()


@router.get("/users/{name}/tokens", response_model=Page[TokenOut], summary="A user's tokens (never their secrets)")
def tokens(name: str = USER, active_only: bool = Query(False), page: PageParams = Depends(page_params),
           ctx: Ctx = Depends(allow(_own_user))) -> dict[str, Any]:
    return page_of(list_tokens(ctx.ws, name, include_inactive=not active_only), page)


@router.get("/tokens", response_model=Page[TokenOut], summary="Every user's tokens (never their secrets)")
def all_tokens(active_only: bool = Query(False), page: PageParams = Depends(page_params),
               ctx: Ctx = Depends(allow("token.admin"))) -> dict[str, Any]:
    return page_of(list_tokens(ctx.ws, None, include_inactive=not active_only), page)


@router.post("/users/{name}/tokens", response_model=TokenCreatedOut, status_code=201,
             summary="Create a token; its secret is in this response only")
def new_token(name: str = USER, body: TokenIn | None = None, ctx: Ctx = Depends(allow("token.admin"))) -> dict[str, Any]:
    spec = body or TokenIn.model_validate({})
    issued = create_token(ctx.ws, name, expires_in_days=spec.expires_in_days, name=spec.name)
    return {"id": issued.token_id, "user": name, "token": issued.secret, "expires_at": issued.expires_at}


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token_(token_id: str = TOKEN_ID, reason: str | None = Query(None, max_length=500),
                  ctx: Ctx = Depends(allow(_own_token))) -> dict[str, Any]:
    return revoke_token(ctx.ws, token_id, reason=reason).to_dict()
