"""Session login on a tenant host, for GraphiQL. Only members of that tenant get in."""

from django import forms
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from apps.accounts import selectors
from apps.accounts.middleware import SESSION_TENANT_KEY, ResolvedRequest


class LoginForm(forms.Form):
    # Django's fields refuse NUL characters and bound the length, so nothing unstorable reaches
    # the user query (PostgreSQL cannot hold a NUL: that was a 500).
    email = forms.EmailField(max_length=254)
    password = forms.CharField(max_length=4096, strip=False)


def _safe_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/graphql/"
    allowed = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if allowed else "/graphql/"


@require_http_methods(["GET", "POST"])
def login_view(request: ResolvedRequest) -> HttpResponse:
    tenant = request.tenant
    assert tenant is not None  # routed on tenant hosts only (config/urls.py)
    context = {"tenant_name": tenant.name, "next": _safe_next(request), "error": ""}
    if request.method == "POST":
        form = LoginForm(request.POST)
        if not form.is_valid():
            context["error"] = "Enter an email address and a password."
            return render(request, "accounts/login.html", context, status=400)
        email = form.cleaned_data["email"].lower()
        user = authenticate(request, username=email, password=form.cleaned_data["password"])
        if user is None or selectors.membership_for(user=user, tenant=tenant) is None:
            context["error"] = "Wrong email or password."
            return render(request, "accounts/login.html", context, status=401)
        login(request, user)
        request.session[SESSION_TENANT_KEY] = tenant.slug
        return redirect(context["next"])
    return render(request, "accounts/login.html", context)


@require_http_methods(["POST"])
def logout_view(request: HttpRequest) -> HttpResponseRedirect:
    logout(request)
    return redirect("/login/")
