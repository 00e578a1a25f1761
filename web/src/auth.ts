// Signing in to the hub from the browser: OpenID Connect Authorization Code
// with PKCE (RFC 7636), the issuer and client id read from the hub's
// `GET /config`, silent refresh with the refresh token, and a pasted bearer
// token (an automation token, `hephd token create`) as the fallback.
//
// Tokens live in localStorage under the hub's origin: the app must open and
// sync after a reload without a round trip to the provider. The page's CSP
// (served by the hub) allows scripts from itself only.
import { base64url } from "./bytes.ts";

export interface HubConfig {
  auth: boolean;
  issuer: string | null;
  client_id: string | null;
  audience: string | null;
}

interface Tokens {
  access: string;
  refresh?: string;
  /** ms since the epoch; unknown for a pasted token. */
  expires?: number;
  /** Where it came from: the provider, or pasted by hand. */
  source: "oidc" | "manual";
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
  end_session_endpoint?: string;
}

const TOKENS = "heph.tokens";
const FLOW = "heph.login";
/** Renew this long before expiry. */
const MARGIN_MS = 60_000;

/** The provider refused: a new sign-in is needed. */
export class AuthError extends Error {}

/**
 * The provider could not be asked (the network, or its own failure): the
 * tokens are kept and the renewal is tried again later.
 */
export class AuthUnavailable extends Error {}

export class Auth {
  private tokens: Tokens | null;
  private discovery: Discovery | null = null;
  private refreshing: Promise<string> | null = null;

  constructor(readonly hub: string, readonly config: HubConfig) {
    this.tokens = load();
  }

  /** Reads `GET /config` from the hub; null when it cannot be reached. */
  static async config(hub: string): Promise<HubConfig | null> {
    try {
      const res = await fetch(new URL("/config", hub), { cache: "no-store" });
      if (!res.ok) return null;
      return (await res.json()) as HubConfig;
    } catch {
      return null;
    }
  }

  get signedIn(): boolean {
    return !this.config.auth || this.tokens !== null;
  }

  get canLogin(): boolean {
    return Boolean(this.config.auth && this.config.issuer && this.config.client_id);
  }

  /** The token for the next connection, refreshed when close to expiry. */
  async token(): Promise<string | null> {
    if (!this.config.auth) return null;
    const t = this.tokens;
    if (!t) throw new AuthError("sign in to sync with the hub");
    if (t.expires === undefined || t.expires - MARGIN_MS > Date.now()) return t.access;
    if (!t.refresh) throw new AuthError("the session expired: sign in again");
    return this.renew(t.refresh);
  }

  /**
   * One renewal at a time: providers rotate refresh tokens, and one used
   * twice (two renewals racing) counts as stolen, which ends the session.
   */
  private renew(refresh: string): Promise<string> {
    this.refreshing ??= this.refresh(refresh).finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /**
   * The token was refused: forget it unless a refresh can replace it. A
   * provider that cannot be reached keeps the tokens for the next try.
   */
  async rejected(): Promise<void> {
    const t = this.tokens;
    if (t?.refresh) {
      try {
        await this.renew(t.refresh);
        return;
      } catch (e) {
        if (e instanceof AuthUnavailable) return;
        /* the provider refused: a new login is needed */
      }
    }
    this.forget();
  }

  setManual(token: string): void {
    this.tokens = { access: token.trim(), source: "manual" };
    save(this.tokens);
  }

  forget(): void {
    this.tokens = null;
    localStorage.removeItem(TOKENS);
  }

  private async endpoints(): Promise<Discovery> {
    if (this.discovery) return this.discovery;
    const issuer = this.config.issuer;
    if (!issuer) throw new AuthError("the hub names no OpenID issuer");
    const res = await reach(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
    if (!res.ok) throw new AuthUnavailable(`the sign-in provider answered ${res.status}`);
    this.discovery = (await res.json()) as Discovery;
    return this.discovery;
  }

  private redirectUri(): string {
    return `${location.origin}/`;
  }

  /** Sends the browser to the provider; it comes back to `/` with a code. */
  async login(): Promise<void> {
    const d = await this.endpoints();
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
    const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem(FLOW, JSON.stringify({ verifier, state, back: location.hash }));
    const url = new URL(d.authorization_endpoint);
    const q = url.searchParams;
    q.set("response_type", "code");
    q.set("client_id", this.config.client_id ?? "");
    q.set("redirect_uri", this.redirectUri());
    q.set("scope", "openid offline_access");
    q.set("code_challenge", challenge);
    q.set("code_challenge_method", "S256");
    q.set("state", state);
    // Consent screens of most providers need this for offline_access.
    q.set("prompt", "consent");
    location.assign(url.toString());
  }

  /**
   * Finishes a login when the page was opened by the provider's redirect
   * (`?code=…&state=…`). Returns true when it did; the URL is cleaned up.
   */
  async completeLogin(): Promise<boolean> {
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    const error = params.get("error");
    if (!code && !error) return false;
    const flow = JSON.parse(sessionStorage.getItem(FLOW) ?? "null") as { verifier: string; state: string; back: string } | null;
    sessionStorage.removeItem(FLOW);
    history.replaceState(null, "", `/${flow?.back ?? ""}`);
    if (error) throw new AuthError(`sign-in failed: ${params.get("error_description") ?? error}`);
    if (!flow || params.get("state") !== flow.state) throw new AuthError("sign-in failed: the answer does not belong to this page's request; try again");
    const d = await this.endpoints();
    await this.exchange(d.token_endpoint, {
      grant_type: "authorization_code",
      code: code ?? "",
      redirect_uri: this.redirectUri(),
      client_id: this.config.client_id ?? "",
      code_verifier: flow.verifier,
    });
    return true;
  }

  private async refresh(refresh: string): Promise<string> {
    const d = await this.endpoints();
    return this.exchange(d.token_endpoint, {
      grant_type: "refresh_token",
      refresh_token: refresh,
      client_id: this.config.client_id ?? "",
    });
  }

  private async exchange(endpoint: string, form: Record<string, string>): Promise<string> {
    const res = await reach(endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
    if (res.status >= 500) throw new AuthUnavailable(`the sign-in provider answered ${res.status}`);
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok || typeof body.access_token !== "string") {
      const why = typeof body.error_description === "string" ? body.error_description : `status ${res.status}`;
      throw new AuthError(`the sign-in provider refused: ${why}`);
    }
    const expiresIn = typeof body.expires_in === "number" ? body.expires_in : undefined;
    this.tokens = {
      access: body.access_token,
      refresh: typeof body.refresh_token === "string" ? body.refresh_token : this.tokens?.refresh,
      expires: expiresIn === undefined ? undefined : Date.now() + expiresIn * 1000,
      source: "oidc",
    };
    save(this.tokens);
    return this.tokens.access;
  }

  /** When the current token must be renewed (ms since the epoch), if known. */
  get renewAt(): number | undefined {
    const e = this.tokens?.expires;
    return e === undefined ? undefined : e - MARGIN_MS;
  }
}

/** `fetch`, with a network failure as an `AuthUnavailable`. */
async function reach(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new AuthUnavailable(`the sign-in provider cannot be reached: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function load(): Tokens | null {
  try {
    return JSON.parse(localStorage.getItem(TOKENS) ?? "null") as Tokens | null;
  } catch {
    return null;
  }
}

function save(t: Tokens): void {
  localStorage.setItem(TOKENS, JSON.stringify(t));
}
