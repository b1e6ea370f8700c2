import { createContext, useContext, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { AuthRequired, Features, getToken, loadFeatures, setToken } from "./api";
import { ArtifactsPage } from "./pages/Artifacts";
import { ComparePage } from "./pages/Compare";
import { LineagePage } from "./pages/Lineage";
import { RunPage } from "./pages/Run";
import { RunsPage } from "./pages/Runs";
import "./style.css";

export const FeaturesContext = createContext<Features>({ types: {} });
export const useFeatures = (): Features => useContext(FeaturesContext);

/** Hash routes (`#/runs?state=FAILED`): the server serves one page at /, and links survive a reload. */
export interface Route {
  path: string[];
  query: URLSearchParams;
}

function parseHash(): Route {
  const [path, query] = window.location.hash.replace(/^#\/?/, "").split("?");
  return { path: path ? path.split("/").map(decodeURIComponent) : ["runs"], query: new URLSearchParams(query ?? "") };
}

export function href(path: string, query?: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v) q.set(k, v);
  const qs = q.toString();
  return `#/${path}${qs ? `?${qs}` : ""}`;
}

export function navigate(path: string, query?: Record<string, string | undefined>): void {
  window.location.hash = href(path, query);
}

function useRoute(): Route {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

function TokenForm({ message, onToken }: { message: string; onToken: () => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      className="token"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        onToken();
      }}
    >
      <h2>This server needs an API token</h2>
      <p className="muted">{message}</p>
      <p>
        Create one with <code>provgraph token create --project P</code>. It is kept in this tab only (sessionStorage).
      </p>
      <input
        name="token"
        type="password"
        placeholder="pgt_…"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        autoFocus
      />
      <button type="submit">Use token</button>
    </form>
  );
}

function Page({ route }: { route: Route }) {
  const [page, arg] = route.path;
  switch (page) {
    case "run":
      return <RunPage runId={arg} key={arg} />;
    case "lineage":
      return <LineagePage route={route} />;
    case "artifacts":
      return <ArtifactsPage route={route} />;
    case "compare":
      return <ComparePage ids={(route.query.get("ids") ?? "").split(",").filter(Boolean)} />;
    default:
      return <RunsPage route={route} />;
  }
}

function App() {
  const route = useRoute();
  const [features, setFeatures] = useState<Features | null>(null);
  const [auth, setAuth] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    loadFeatures()
      .then((f) => {
        setFeatures(f);
        setAuth(null);
      })
      .catch((e) => {
        if (e instanceof AuthRequired) {
          setToken(null);
          setAuth(getToken() === null && attempt === 0 ? e.message : `${e.message}`);
        } else setError(String(e.message ?? e));
      });
  }, [attempt]);

  const section = route.path[0] ?? "runs";
  return (
    <>
      <header>
        <a className="brand" href="#/runs">
          provgraph
        </a>
        <nav>
          {[
            ["runs", "Runs"],
            ["lineage", "Lineage"],
            ["artifacts", "Artifacts"],
            ["compare", "Compare"],
          ].map(([p, label]) => (
            <a key={p} href={`#/${p}`} className={section === p || (p === "runs" && section === "run") ? "on" : ""}>
              {label}
            </a>
          ))}
          <a href="/graphql" target="_blank" rel="noreferrer">
            GraphiQL
          </a>
        </nav>
        {getToken() && (
          <button
            className="link"
            onClick={() => {
              setToken(null);
              setFeatures(null);
              setAttempt((a) => a + 1);
            }}
          >
            forget token
          </button>
        )}
      </header>
      <main>
        {auth !== null ? (
          <TokenForm message={auth} onToken={() => setAttempt((a) => a + 1)} />
        ) : error ? (
          <p className="error">Cannot reach the API: {error}</p>
        ) : features ? (
          <FeaturesContext.Provider value={features}>
            <Page route={route} />
          </FeaturesContext.Provider>
        ) : (
          <p className="muted">loading…</p>
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(<App />);
