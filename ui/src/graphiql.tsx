// GraphiQL from the package's own files (no CDN), so /graphql works offline. The UI's token, when this tab
// has one, is put in the headers pane; the pane stays editable.
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import "graphiql/graphiql.css";
import { createRoot } from "react-dom/client";
import { getToken } from "./api";

const token = getToken();
const fetcher = createGraphiQLFetcher({ url: `${window.location.origin}/graphql` });

createRoot(document.getElementById("graphiql")!).render(
  <GraphiQL
    fetcher={fetcher}
    defaultHeaders={token ? JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2) : undefined}
    shouldPersistHeaders={false}
  />,
);
