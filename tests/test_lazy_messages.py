"""The admin's messages still reach the next page, though their storage is made only when a request uses it."""

import pytest

from recruitment.models import LinkGroup

pytestmark = pytest.mark.django_db


def test_a_message_the_admin_adds_is_shown_on_the_page_it_redirects_to(admin_client):
    group = LinkGroup.objects.create(name="pilots")
    page = admin_client.post(
        "/admin/recruitment/linkgroup/",
        {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"},
        follow=True,
    )
    assert not LinkGroup.objects.filter(pk=group.pk).exists()
    assert [str(message) for message in page.context["messages"]] == ["Successfully deleted 1 link group."]
