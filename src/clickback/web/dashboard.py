"""The dashboard's routes: every page of web/pages.PAGES with its handler, and our own assets."""

from starlette.routing import Route

from clickback.service.runtime import Runtime
from clickback.web import (
    builder,
    catalogpages,
    outboundpages,
    overview,
    partners,
    reconcilepages,
    records,
    testerpage,
    userpages,
)
from clickback.web.pages import PAGES, Handler, asset, guarded

HANDLERS: dict[str, Handler] = {
    "/": overview.overview,
    "/reports": builder.builder,
    "/reports.csv": builder.csv_download,
    "/conversions": records.conversions,
    "/conversions/{conversion_id}": records.conversion,
    "/players": records.players,
    "/postbacks": records.postbacks,
    "/diagnosis": partners.diagnosis,
    "/tester": testerpage.tester,
    "/links": records.links,
    "/statements": partners.statement,
    "/statements.csv": partners.statement_download,
    "/outbound": partners.outbound_settings,
    "/deliveries": outboundpages.deliveries,
    "/offers/{offer_id}/guide": records.guide,
    "/catalog/advertisers": catalogpages.advertisers,
    "/catalog/advertisers/{advertiser_id}": catalogpages.advertiser,
    "/catalog/offers": catalogpages.offers,
    "/catalog/offers/{offer_id}": catalogpages.offer,
    "/catalog/affiliates": catalogpages.affiliates,
    "/catalog/affiliates/{affiliate_id}": catalogpages.affiliate,
    "/catalog/links": catalogpages.catalog_links,
    "/catalog/links/{link_id}": catalogpages.catalog_link,
    "/outbound/{template_id}": outboundpages.template_page,
    "/deliveries/{delivery_id}": outboundpages.delivery_page,
    "/destinations": outboundpages.destinations,
    "/users": userpages.users,
    "/users/{user_id}": userpages.user,
    "/account": userpages.account,
    # The downloads before the page: `{reconciliation_id}` alone would match "7.csv" too.
    "/reconciliations": reconcilepages.reconciliations,
    "/reconciliations/{reconciliation_id}.csv": reconcilepages.csv_download,
    "/reconciliations/{reconciliation_id}.json": reconcilepages.json_download,
    "/reconciliations/{reconciliation_id}": reconcilepages.reconciliation,
}


def routes(runtime: Runtime) -> list[Route]:
    assert set(HANDLERS) == set(PAGES), "every page has an access entry and a handler"
    pages = [guarded(runtime, path, handler) for path, handler in HANDLERS.items()]
    return [*pages, Route("/assets/{name}", asset, methods=["GET"])]
