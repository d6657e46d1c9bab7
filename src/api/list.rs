//! What list endpoints share beyond blocking: `filter` (a [`Filter`] expression on each item as
//! the endpoint answers it), and pagination — `per_page`, `next_token`, `reverse` — with the token
//! of the next page in `X-Nomad-NextToken`.
//!
//! A page token is the key of the first item of the next page (an ID, or `namespace.ID` where
//! items of several namespaces are listed), so a page stays correct when items before it are
//! added or removed. When a request pages, items are ordered by that key (descending with
//! `reverse`); the filter applies before pagination, so `per_page` counts matching items, as
//! Nomad's paginator does (Nomad: `nomad/state/paginator/paginator.go`).

use serde::Serialize;

use super::error::ApiError;
use super::filter::Filter;
use super::query::QueryOptions;

/// The header that carries the token of the next page.
pub const NEXT_TOKEN_HEADER: &str = "X-Nomad-NextToken";

/// A list request's filter and pagination.
#[derive(Debug, Default)]
pub struct ListQuery {
    filter: Option<Filter>,
    per_page: Option<usize>,
    next_token: Option<String>,
    reverse: bool,
    /// Sorted by key even when the request does not page ([`Self::newest_first`]).
    always_sorted: bool,
}

/// One page of a list, and the token of the next page if there is one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

impl ListQuery {
    pub fn parse(query: &QueryOptions) -> Result<Self, ApiError> {
        let filter = match query.params.get("filter").filter(|text| !text.is_empty()) {
            Some(text) => Some(Filter::parse(text).map_err(filter_error)?),
            None => None,
        };
        let per_page = match query.params.get("per_page").filter(|text| !text.is_empty()) {
            Some(text) => match text.parse::<usize>() {
                Ok(0) => None,
                Ok(count) => Some(count),
                Err(_) => {
                    return Err(ApiError::BadRequest(format!(
                        "failed to parse value of \"per_page\": {text:?}"
                    )));
                }
            },
            None => None,
        };
        let next_token = query
            .params
            .get("next_token")
            .filter(|token| !token.is_empty())
            .cloned();
        Ok(Self {
            filter,
            per_page,
            next_token,
            reverse: query.flag("reverse")?,
            always_sorted: false,
        })
    }

    /// A list whose keys grow with the items' age the other way round (a zero-padded modify
    /// index first, [`modify_index_token`]): always sorted, newest first, `reverse` asking for
    /// oldest first (Nomad's job statuses: `Reverse = !Reverse` over `JobsByModifyIndex`).
    pub fn newest_first(mut self) -> Self {
        self.reverse = !self.reverse;
        self.always_sorted = true;
        self
    }

    /// Every matching item on one page, whatever `per_page` says (a request naming its items).
    pub fn unlimited(mut self) -> Self {
        self.per_page = None;
        self
    }

    fn pages(&self) -> bool {
        self.always_sorted || self.per_page.is_some() || self.next_token.is_some() || self.reverse
    }

    /// Filters `items` and cuts the page the request asks for; `key` gives an item's page token.
    pub fn page<T: Serialize>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, ApiError> {
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            if let Some(filter) = &self.filter {
                let value = serde_json::to_value(&item)
                    .map_err(|error| ApiError::Internal(error.to_string()))?;
                if !filter.matches(&value).map_err(filter_error)? {
                    continue;
                }
            }
            keyed.push((key(&item), item));
        }
        if !self.pages() {
            return Ok(Page {
                items: keyed.into_iter().map(|(_, item)| item).collect(),
                next_token: None,
            });
        }
        keyed.sort_by(|(left, _), (right, _)| {
            if self.reverse {
                right.cmp(left)
            } else {
                left.cmp(right)
            }
        });
        let start = match &self.next_token {
            Some(token) => keyed.partition_point(|(key, _)| {
                if self.reverse {
                    key > token
                } else {
                    key < token
                }
            }),
            None => 0,
        };
        let mut rest = keyed.into_iter().skip(start);
        let items: Vec<T> = rest
            .by_ref()
            .take(self.per_page.unwrap_or(usize::MAX))
            .map(|(_, item)| item)
            .collect();
        let next_token = rest.next().map(|(key, _)| key);
        Ok(Page { items, next_token })
    }
}

/// Nomad's wording for a filter it cannot use.
fn filter_error(error: super::filter::FilterError) -> ApiError {
    ApiError::BadRequest(format!("failed to read filter expression: {error}"))
}

/// The page token of an item of a namespaced list: its ID alone within one namespace, and
/// `namespace.ID` when the list spans namespaces (`namespace=*`), so the order is by namespace
/// then ID.
pub fn namespaced_token(query: &QueryOptions, namespace: &str, id: &str) -> String {
    if query.all_namespaces() {
        format!("{namespace}.{id}")
    } else {
        id.to_owned()
    }
}

/// The page token of an item of a list ordered by modify index ([`ListQuery::newest_first`]):
/// the index zero-padded, so tokens sort as numbers, then `namespace.ID` to order items written
/// by one Raft entry.
pub fn modify_index_token(modify_index: u64, namespace: &str, id: &str) -> String {
    format!("{modify_index:020}.{namespace}.{id}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        let params: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        ListQuery::parse(&QueryOptions::parse(params).expect("query parses")).expect("list parses")
    }

    fn items() -> Vec<serde_json::Value> {
        ["c", "a", "e", "b", "d"]
            .iter()
            .map(|id| json!({ "ID": id, "Even": matches!(*id, "b" | "d") }))
            .collect()
    }

    fn ids(page: &Page<serde_json::Value>) -> Vec<&str> {
        page.items
            .iter()
            .map(|item| item["ID"].as_str().expect("an ID"))
            .collect()
    }

    fn id(item: &serde_json::Value) -> String {
        item["ID"].as_str().expect("an ID").to_owned()
    }

    #[test]
    fn without_paging_the_order_is_kept() {
        let page = query(&[]).page(items(), id).expect("pages");
        assert_eq!(ids(&page), ["c", "a", "e", "b", "d"]);
        assert_eq!(page.next_token, None);
    }

    #[test]
    fn pages_follow_their_tokens_to_the_end() {
        let first = query(&[("per_page", "2")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&first), ["a", "b"]);
        assert_eq!(first.next_token.as_deref(), Some("c"));
        let second = query(&[("per_page", "2"), ("next_token", "c")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&second), ["c", "d"]);
        let last = query(&[("per_page", "2"), ("next_token", "e")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&last), ["e"]);
        assert_eq!(last.next_token, None);
    }

    #[test]
    fn a_token_whose_item_is_gone_starts_at_the_next_one() {
        let page = query(&[("per_page", "2"), ("next_token", "bb")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&page), ["c", "d"]);
    }

    #[test]
    fn reverse_pages_from_the_end() {
        let first = query(&[("per_page", "2"), ("reverse", "true")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&first), ["e", "d"]);
        let second = query(&[("per_page", "2"), ("reverse", "true"), ("next_token", "c")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&second), ["c", "b"]);
        assert_eq!(second.next_token.as_deref(), Some("a"));
    }

    #[test]
    fn the_filter_applies_before_the_page_is_cut() {
        let page = query(&[("per_page", "1"), ("filter", "Even == true")])
            .page(items(), id)
            .expect("pages");
        assert_eq!(ids(&page), ["b"]);
        assert_eq!(page.next_token.as_deref(), Some("d"));
    }

    #[test]
    fn newest_first_sorts_by_descending_key_and_reverse_turns_it() {
        let indexed: Vec<serde_json::Value> = [(7, "a"), (12, "b"), (9, "c")]
            .iter()
            .map(|(index, id)| json!({ "ID": id, "ModifyIndex": index }))
            .collect();
        let key = |item: &serde_json::Value| {
            let index = item["ModifyIndex"].as_u64().expect("an index");
            modify_index_token(index, "default", item["ID"].as_str().expect("an ID"))
        };
        let all = query(&[])
            .newest_first()
            .page(indexed.clone(), key)
            .expect("pages");
        assert_eq!(ids(&all), ["b", "c", "a"]);
        let first = query(&[("per_page", "1")])
            .newest_first()
            .page(indexed.clone(), key)
            .expect("pages");
        assert_eq!(ids(&first), ["b"]);
        let token = first.next_token.expect("a next page");
        assert_eq!(token, "00000000000000000009.default.c");
        let second = query(&[("per_page", "1"), ("next_token", &token)])
            .newest_first()
            .page(indexed.clone(), key)
            .expect("pages");
        assert_eq!(ids(&second), ["c"]);
        let oldest = query(&[("reverse", "true"), ("per_page", "5")])
            .newest_first()
            .unlimited()
            .page(indexed, key)
            .expect("pages");
        assert_eq!(ids(&oldest), ["a", "c", "b"]);
    }

    #[test]
    fn bad_parameters_are_named() {
        let parse = |pairs: &[(&str, &str)]| {
            let params = pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect();
            ListQuery::parse(&QueryOptions::parse(params).expect("query parses"))
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            parse(&[("per_page", "ten")]),
            "failed to parse value of \"per_page\": \"ten\""
        );
        assert_eq!(
            parse(&[("filter", "Status ==")]),
            "failed to read filter expression: 9: expected a value at the end"
        );
    }
}
