import { useEffect, useState } from "react";
import { AuthRequired, DatasetRef, fmt, gql, Json, setToken, shortHash } from "./api";

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  /** The key of the request `data` answers (tests and benchmarks wait for it). */
  loadedKey: string | null;
  reload: () => void;
}

/** Runs `query` whenever `key` changes; a 401 drops the token and reloads into the token form. */
export function useQuery<T>(query: string | null, variables: Record<string, unknown>, key: string): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean; loadedKey: string | null }>({
    data: null,
    error: null,
    loading: true,
    loadedKey: null,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (query === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    gql<T>(query, variables)
      .then((data) => live && setState({ data, error: null, loading: false, loadedKey: key }))
      .catch((e) => {
        if (e instanceof AuthRequired) {
          setToken(null);
          window.location.reload();
        }
        if (live) setState({ data: null, error: String(e.message ?? e), loading: false, loadedKey: key });
      });
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function State({ state }: { state: string }) {
  return <span className={`state state-${state.toLowerCase()}`}>{state}</span>;
}

export function RunLink({ id, label }: { id: string; label?: string }) {
  return (
    <a className="mono" href={`#/run/${encodeURIComponent(id)}`}>
      {label ?? id}
    </a>
  );
}

export function datasetHref(d: { namespace: string; name: string; version?: string }): string {
  const q = new URLSearchParams({ ns: d.namespace, name: d.name });
  if (d.version) q.set("version", d.version);
  return `#/artifacts?${q}`;
}

export function lineageHref(node: string, direction = "UPSTREAM"): string {
  return `#/lineage?${new URLSearchParams({ node, direction })}`;
}

export function DatasetRefs({ refs, empty }: { refs: DatasetRef[]; empty: string }) {
  if (!refs.length) return <p className="muted">{empty}</p>;
  return (
    <table className="kv">
      <thead>
        <tr>
          <th>binding</th>
          <th>dataset</th>
          <th>version (content hash)</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {refs.map((d) => (
          <tr key={`${d.binding}:${d.id}`}>
            <td>{d.binding}</td>
            <td>
              <a href={datasetHref(d)}>
                {d.namespace}/{d.name}
              </a>
              {d.kind ? <span className="muted"> ({d.kind})</span> : null}
            </td>
            <td className="mono" title={d.version}>
              {d.version}
            </td>
            <td>
              <a href={lineageHref(d.id)}>lineage</a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function KeyValues({ values, empty }: { values: Record<string, Json> | null | undefined; empty: string }) {
  const entries = Object.entries(values ?? {});
  if (!entries.length) return <p className="muted">{empty}</p>;
  return (
    <table className="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td className="mono">{fmt(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Hash({ value }: { value: string | null | undefined }) {
  return (
    <span className="mono" title={value ?? ""}>
      {shortHash(value, 23)}
    </span>
  );
}

export function ErrorLine({ error }: { error: string | null }) {
  return error ? <p className="error">{error}</p> : null;
}
