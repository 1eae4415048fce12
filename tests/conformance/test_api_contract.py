"""The end-to-end API tests, run against every backend (see conftest.py)."""

from tests.test_end_to_end import (  # noqa: F401 - collected here, once per backend
    test_collection_lifecycle,
    test_cursor_paging_is_complete_and_stable_under_writes,
    test_documents_become_searchable_with_highlights_and_ranking,
    test_filters_facets_and_sort,
    test_phrases_do_not_span_two_fields,
    test_tasks_listing_and_document_get,
    test_unchanged_documents_are_not_reindexed,
    test_update_and_delete_are_reflected,
    test_web_search_syntax,
)
